//! An alert episode's incident channel (issue 38): opened from a High or
//! Breached alert's menu or with `/backfill incident <job>`, or an existing
//! channel linked with `/backfill incident link <job>`; one per episode.
//!
//! Deciding is once, in the store: the claim row (keyed by the alert) is
//! written with its audit entry and, for a new channel, the timer whose
//! claimed step asks Slack to create it ([`create`]). The channel Slack
//! made is recorded with a conditional update carrying everything that
//! follows (invitations, topic, the job's card with the alert's buttons,
//! the note in the alert's thread, the alert's edit) as outbox rows. While
//! the alert lives, every note in its thread is also a line in the channel
//! (the store writes it with the note). On resolution the channel gets the
//! episode's *Timeline* from the audit log and, for a channel the bot
//! created, an *Archive channel* button ([`archive`]: operators, audited,
//! once; a linked channel is not the bot's to archive). What Slack made of
//! the archive call is read a minute on ([`archive_checked`]): a refusal
//! takes the archive back and is said.

use crate::context::AppState;
use crate::domain::risk::RiskBand;
use crate::domain::text::{date_token, escape_slack};
use crate::flows::alert_view::{ended_line, render, AlertView};
use crate::flows::ids::{
    ARCHIVE_CHANNEL_ACTION, ARCHIVE_CHECK_TIMER, BUTTONS_TIMER, DISPOSITION_ACTION,
    INCIDENT_CHANNEL_TIMER,
};
use crate::flows::thread::{audit_entry, thread_message, AlertError};
use crate::slack::api::SlackCallError;
use crate::store::{
    incident_channel_order, Alert, AuditEntry, Effects, IncidentChannel, NewOutboxMessage, NewTimer,
};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

/// Slack's longest channel name.
pub const MAX_NAME: usize = 80;

/// How many numbered names (`-2`, `-3`, …) are tried when a name is taken.
const NAME_TRIES: usize = 20;

/// The name an episode's channel asks for: the prefix, the asset and the
/// day (`sla-revenue-daily-0302`), in Slack's rules: lowercase letters,
/// digits, hyphens and underscores, at most 80 characters, with room left
/// for a `-NN` that makes it unique.
pub fn channel_name(prefix: &str, asset: &str, day: DateTime<Utc>) -> String {
    let mut slug = String::new();
    for c in asset.chars().flat_map(char::to_lowercase) {
        let c = if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' {
            c
        } else {
            '-'
        };
        if c == '-' && (slug.is_empty() || slug.ends_with('-')) {
            continue;
        }
        slug.push(c);
    }
    let date = day.format("%m%d").to_string();
    let room = (MAX_NAME - 3).saturating_sub(prefix.len() + date.len() + 1);
    let slug: String = slug.chars().take(room).collect();
    let slug = slug.trim_end_matches('-');
    if slug.is_empty() {
        format!("{prefix}job-{date}")
    } else {
        format!("{prefix}{slug}-{date}")
    }
}

/// The `n`th name tried (1: the name itself, then `-2`, `-3`, …), within 80
/// characters.
pub fn numbered(name: &str, n: usize) -> String {
    if n <= 1 {
        return name.chars().take(MAX_NAME).collect();
    }
    let suffix = format!("-{n}");
    let base: String = name.chars().take(MAX_NAME - suffix.len()).collect();
    format!("{base}{suffix}")
}

/// What asking for an episode's channel came to.
#[derive(Debug, PartialEq)]
pub enum OpenOutcome {
    /// Claimed: Slack is asked to create it now.
    Opening { name: String },
    /// The existing channel is the episode's from now on.
    Linked { channel: String },
    /// The episode has one already (or it is being opened).
    Already(Box<IncidentChannel>),
    /// Only a High or Breached alert gets a new channel.
    NotSerious(RiskBand),
    /// The alert has resolved.
    Resolved,
}

/// What the person who asked is told about the episode's channel.
pub fn opened_words(outcome: &OpenOutcome) -> String {
    match outcome {
        OpenOutcome::Opening { name } => format!(
            ":rotating_light: Opening the incident channel `#{name}`: you, whoever was paged and whoever acknowledged are invited, and the alert links it."
        ),
        OpenOutcome::Linked { channel } => format!(
            ":link: <#{channel}> is this alert's incident channel now: it gets a line for each event, and `/backfill` here acts on the tenant."
        ),
        OpenOutcome::Already(ic) => already(ic),
        OpenOutcome::NotSerious(band) => format!(
            "This alert is *{}*: an incident channel is for High or Breached alerts. To use a channel anyway, run `/backfill incident link <job>` in it.",
            band.label()
        ),
        OpenOutcome::Resolved => "This alert has resolved; there is no incident to open a channel for.".into(),
    }
}

fn already(ic: &IncidentChannel) -> String {
    match (&ic.channel, &ic.failed) {
        (Some(c), _) if ic.archived_at.is_some() => {
            format!("This alert's incident channel <#{c}> was archived; nothing changed.")
        }
        (Some(c), _) => format!("This alert already has its incident channel: <#{c}>. Nothing changed."),
        (None, Some(why)) => format!(
            "Slack would not create this alert's incident channel ({why}); run `/backfill incident link <job>` in a channel to use it instead."
        ),
        (None, None) => format!(
            "The incident channel `#{}` asked for by <@{}> is being opened; nothing changed.",
            ic.name, ic.requested_by
        ),
    }
}

/// Asks for an episode's incident channel (`by` an operator, checked by
/// the caller): a new one, or `link` an existing one. Decided once.
pub async fn open(
    state: &AppState,
    alert: &Alert,
    by: &str,
    link: Option<&str>,
) -> Result<OpenOutcome, AlertError> {
    if !alert.is_open() {
        return Ok(OpenOutcome::Resolved);
    }
    if let Some(existing) = state.store.incident_channel(&alert.id).await? {
        return Ok(OpenOutcome::Already(Box::new(existing)));
    }
    if link.is_none() && !matches!(alert.band, RiskBand::High | RiskBand::Breached) {
        return Ok(OpenOutcome::NotSerious(alert.band));
    }
    let now = state.clock.now();
    let name = channel_name(
        &state.config.incidents.channel_prefix,
        &alert.asset_name(),
        now,
    );
    let claim = IncidentChannel {
        alert_id: alert.id.clone(),
        tenant_id: alert.tenant_id.clone(),
        job_id: alert.job_id.clone(),
        name: name.clone(),
        channel: link.map(str::to_string),
        linked: link.is_some(),
        requested_by: by.to_string(),
        requested_at: now,
        opened_at: link.map(|_| now),
        failed: None,
        archived_at: None,
        archived_by: None,
    };
    // Read before the commit: who to invite once the channel exists.
    let mut people = invitees(state, alert, by).await;
    if link.is_some() {
        // They ran the command in it: they are in it already.
        people.retain(|u| u != by);
    }
    let (made, created) = state
        .store
        .claim_incident_channel_with(&claim, now, |ic| {
            let mut e = Effects::new();
            let (action, outcome) = match link {
                Some(_) => ("incident_channel_link", "linked"),
                None => ("incident_channel_open", "requested"),
            };
            e.record(audit_entry(
                state,
                alert,
                by,
                action,
                outcome,
                json!({ "alert_id": alert.id, "name": ic.name, "channel": ic.channel }),
            ));
            match &ic.channel {
                Some(channel) => match opened_effects(state, alert, ic, channel, &people, now) {
                    Ok(more) => {
                        e.extend(more);
                    }
                    Err(err) => {
                        tracing::error!(error = %err, "rendering an incident channel's card failed")
                    }
                },
                None => {
                    e.schedule(NewTimer {
                        kind: INCIDENT_CHANNEL_TIMER.into(),
                        subject_id: alert.id.clone(),
                        payload: json!({ "invite": people }),
                        due_at: now,
                        dedup_key: Some(format!("incident:{}:create", alert.id)),
                    });
                }
            }
            e
        })
        .await?;
    if !created {
        return Ok(OpenOutcome::Already(Box::new(made)));
    }
    state.wake_outbox();
    Ok(match made.channel {
        Some(channel) => OpenOutcome::Linked { channel },
        None => OpenOutcome::Opening { name },
    })
}

/// Who the channel invites: the person who asked, whoever was paged for
/// the alert ([`paged_people`]) and whoever acknowledged it, each once.
async fn invitees(state: &AppState, alert: &Alert, by: &str) -> Vec<String> {
    let mut out = vec![by.to_string()];
    if let Some(a) = &alert.acked_by {
        out.push(a.clone());
    }
    out.extend(paged_people(state, alert).await);
    let mut seen = std::collections::HashSet::new();
    out.retain(|u| seen.insert(u.clone()));
    out
}

/// Everyone paged for the alert: each tier of its tenant's own path that
/// its own escalation paged, resolved as the page resolved it (its
/// rotations' member on shift, overrides and PagerDuty schedules at the
/// time of the page), groups expanded; in a storm, whom its tenant's
/// roll-up paged while the alert was open, the roll-up's one escalation
/// paging for all its jobs ([`crate::flows::group_paging::paged_for`]);
/// and whom a widespread slowdown or several high-priority jobs at once
/// paged naming its job ([`crate::flows::incidents::paged_for`]). The
/// channel invites them, and they may say how the episode ended.
pub async fn paged_people(state: &AppState, alert: &Alert) -> Vec<String> {
    let mut out = Vec::new();
    match state.store.escalation_pages_of(&alert.id).await {
        Ok(pages) => {
            let tiers = &state.config.escalation_for(&alert.tenant_id).tiers;
            for p in pages {
                let Some(tier) = usize::try_from(p.tier).ok().and_then(|t| tiers.get(t)) else {
                    continue;
                };
                let at = DateTime::<Utc>::from_timestamp_millis(p.paged_at_ms)
                    .unwrap_or_else(|| state.clock.now());
                match crate::flows::oncall::paged(state, tier, at).await {
                    Ok((_, users)) => out.extend(users),
                    Err(e) => tracing::warn!(error = %e, "could not expand a paged tier"),
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not read who was paged"),
    }
    match crate::flows::group_paging::paged_for(state, alert).await {
        Ok(people) => out.extend(people),
        Err(e) => tracing::warn!(error = %e, "could not read whom the roll-up paged"),
    }
    match crate::flows::incidents::paged_for(state, alert).await {
        Ok(people) => out.extend(people),
        Err(e) => tracing::warn!(error = %e, "could not read whom the wide incidents paged"),
    }
    out.sort();
    out.dedup();
    out
}

/// The topic: the job, its band, its deadline and the alert's link, within
/// Slack's 250 characters (plain text: a topic renders no markup).
pub fn topic(alert: &Alert) -> String {
    let link = match (&alert.channel, &alert.ts) {
        (Some(c), Some(ts)) => format!("https://slack.com/archives/{c}/p{}", ts.replace('.', "")),
        _ => String::new(),
    };
    let deadline = alert
        .deadline
        .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| "none".into());
    let head = format!(
        "{} (job {}) · {} · deadline {deadline}",
        alert.asset_name(),
        alert.job_id.chars().take(8).collect::<String>(),
        alert.band.label(),
    );
    let room = 250usize.saturating_sub(link.chars().count() + 3);
    let head = crate::slack::limits::truncate(&head, room);
    if link.is_empty() {
        head
    } else {
        format!("{head} · {link}")
    }
}

/// Everything that follows the channel's existence, committed with it:
/// the invitations, the topic, the job's card with the alert's buttons,
/// the note in the alert's thread, the alert's edit and the audit entry.
fn opened_effects(
    state: &AppState,
    alert: &Alert,
    ic: &IncidentChannel,
    channel: &str,
    people: &[String],
    now: DateTime<Utc>,
) -> Result<Effects, AlertError> {
    let mut e = Effects::new();
    let order = incident_channel_order(&alert.id);
    let call = |method: &str, payload: Value, key: String| NewOutboxMessage {
        ordering_key: Some(order.clone()),
        ..NewOutboxMessage::call(method, payload, key)
    };
    if !people.is_empty() {
        e.send(call(
            "conversations.invite",
            json!({ "channel": channel, "users": people.join(",") }),
            format!("incident:{}:invite", alert.id),
        ));
    }
    e.send(call(
        "conversations.setTopic",
        json!({ "channel": channel, "topic": topic(alert) }),
        format!("incident:{}:topic", alert.id),
    ));
    // The job's card: the alert as it stands, with its buttons.
    if let Some(mut view) = AlertView::shown(alert) {
        // In the channel itself, opening it is no longer on offer.
        view.buttons
            .retain(|b| b.action_id != crate::flows::ids::INCIDENT_CHANNEL_ACTION);
        let mut payload = render(state, &view)?;
        payload["channel"] = channel.into();
        e.send(call(
            "chat.postMessage",
            payload,
            format!("incident:{}:card", alert.id),
        ));
    }
    let verb = if ic.linked { "linked" } else { "opened" };
    e.send(thread_message(
        state,
        alert,
        format!("incident:{}:thread", alert.id),
        &format!(
            ":rotating_light: Incident channel <#{channel}> {verb} by <@{}>: it gets a line for each event of this alert.",
            ic.requested_by
        ),
    )?);
    // The alert's message names the channel (its buttons re-render).
    e.schedule(NewTimer {
        kind: BUTTONS_TIMER.into(),
        subject_id: alert.id.clone(),
        payload: Value::Null,
        due_at: now,
        dedup_key: Some(format!("incident:{}:alert-edit", alert.id)),
    });
    Ok(e)
}

/// The claimed step that creates the channel in Slack: the name asked for,
/// or the first numbered one not taken. A refusal that will not pass is
/// recorded, and said in the thread, once; Slack unavailable is an error,
/// so the timer tries again. An alert resolved by then gets no channel (the
/// requester is told in the thread); one that resolved while Slack made it
/// gets its Timeline with the rest.
pub async fn create(state: &AppState, alert_id: &str, payload: &Value) -> anyhow::Result<()> {
    let Some(ic) = state.store.incident_channel(alert_id).await? else {
        return Ok(());
    };
    if ic.channel.is_some() || ic.failed.is_some() {
        return Ok(());
    }
    let Some(alert) = state.store.get_alert(alert_id).await? else {
        return Ok(());
    };
    if !alert.is_open() {
        // Resolved while Slack was being asked (this step is tried again,
        // backing off, while Slack is unavailable): the incident is over, so
        // no channel is made (as `open` refuses a resolved alert), and whoever
        // asked is told in the thread, once.
        let why = "the alert resolved before Slack created it";
        let text = format!(
            ":information_source: <@{}>, the incident channel `#{}` you asked for was not created: the alert resolved before Slack created it. Its thread and `/backfill status` have the episode.",
            ic.requested_by, ic.name
        );
        return give_up(state, &alert, why, &text).await;
    }
    let people: Vec<String> = payload
        .get("invite")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_else(|| vec![ic.requested_by.clone()]);
    let mut refused = None;
    for n in 1..=NAME_TRIES {
        let name = numbered(&ic.name, n);
        match state
            .slack
            .call("conversations.create", &json!({ "name": name }))
            .await
        {
            Ok(answer) => {
                let Some(channel) = answer.pointer("/channel/id").and_then(Value::as_str) else {
                    anyhow::bail!("conversations.create answered without a channel id");
                };
                let now = state.clock.now();
                // The alert may have resolved while Slack made the channel:
                // then its Timeline (and Archive) comes with the rest, at
                // once, as the resolution would have sent it.
                let alert = state.store.get_alert(alert_id).await?.unwrap_or(alert);
                let mut timeline = None;
                if !alert.is_open() {
                    let made = IncidentChannel {
                        channel: Some(channel.to_string()),
                        ..ic.clone()
                    };
                    let how = alert
                        .resolution
                        .clone()
                        .unwrap_or_else(|| "resolved".into());
                    let at = alert.resolved_at.unwrap_or(now);
                    timeline =
                        Some(timeline_message(state, &alert, &made, channel, &how, at).await?);
                }
                let mut failure = None;
                let opened = state
                    .store
                    .open_incident_channel_with(alert_id, channel, now, |ic| {
                        let mut e = match opened_effects(state, &alert, ic, channel, &people, now) {
                            Ok(e) => e,
                            Err(err) => {
                                failure = Some(err.to_string());
                                Effects::new()
                            }
                        };
                        e.record(audit_entry(
                            state,
                            &alert,
                            "bot",
                            "incident_channel_created",
                            "created",
                            json!({ "alert_id": alert.id, "channel": channel, "name": name }),
                        ));
                        if let Some(t) = timeline {
                            e.send(t);
                        }
                        e
                    })
                    .await?;
                if let Some(f) = failure {
                    tracing::error!(error = %f, "an incident channel's card could not be rendered");
                }
                if opened.is_some() {
                    state.wake_outbox();
                }
                return Ok(());
            }
            Err(SlackCallError::Refused { code, .. }) if code == "name_taken" => continue,
            Err(SlackCallError::Refused { code, .. }) => {
                refused = Some(code);
                break;
            }
            Err(e) => return Err(e.into()),
        }
    }
    let why = refused.unwrap_or_else(|| format!("name_taken ({NAME_TRIES} names tried)"));
    let text = format!(
        ":warning: Slack would not create the incident channel `{}` ({why}). Check the bot's `channels:manage` scope, or link an existing channel with `/backfill incident link {}` run in it.",
        ic.name,
        alert.job_id.chars().take(8).collect::<String>()
    );
    give_up(state, &alert, &why, &text).await
}

/// Records why the claimed channel was not created (`why`), once, with the
/// note in the alert's thread that says so (`text`) and the audit entry.
async fn give_up(state: &AppState, alert: &Alert, why: &str, text: &str) -> anyhow::Result<()> {
    let alert_id = alert.id.as_str();
    let now = state.clock.now();
    let note = thread_message(state, alert, format!("incident:{alert_id}:failed"), text)?;
    state
        .store
        .fail_incident_channel_with(alert_id, why, now, |_| {
            let mut e = Effects::new();
            e.send(note);
            e.record(audit_entry(
                state,
                alert,
                "bot",
                "incident_channel_created",
                &format!("failed: {why}"),
                json!({ "alert_id": alert_id }),
            ));
            e
        })
        .await?;
    state.wake_outbox();
    Ok(())
}

/// What a resolving alert sends its live incident channel, committed with
/// the resolution: the episode's *Timeline* and the *Archive channel*
/// button. Nothing when it has none.
pub async fn on_resolution(
    state: &AppState,
    alert: &Alert,
    how: &str,
    now: DateTime<Utc>,
) -> Result<Vec<NewOutboxMessage>, AlertError> {
    let Some(ic) = state.store.incident_channel(&alert.id).await? else {
        return Ok(Vec::new());
    };
    let Some(channel) = ic.channel.as_deref().filter(|_| ic.archived_at.is_none()) else {
        return Ok(Vec::new());
    };
    Ok(vec![
        timeline_message(state, alert, &ic, channel, how, now).await?,
    ])
}

/// The episode's *Timeline* for its channel `channel`, resolved `how` at
/// `now`, with *Archive channel* unless the channel was linked. One per
/// episode, whoever sends it (its outbox key).
async fn timeline_message(
    state: &AppState,
    alert: &Alert,
    ic: &IncidentChannel,
    channel: &str,
    how: &str,
    now: DateTime<Utc>,
) -> Result<NewOutboxMessage, AlertError> {
    let entries = episode_entries(state, alert, now).await?;
    let lines = timeline_lines(state, &entries, how, now).await;
    let text = format!(
        "*Timeline* of *{}* (job `{}`), opened {}",
        escape_slack(&alert.asset_name()),
        alert.job_id.chars().take(8).collect::<String>(),
        date_token(alert.opened_at)
    );
    let body = crate::slack::limits::join_capped(&lines, "\n", 2900, |k| {
        format!("…and {k} more (`/backfill status` and the audit log have them all)")
    });
    // A channel the bot created is offered *Archive channel*; a linked one
    // (a room someone already had, perhaps the tenant's standing incident
    // room) is not the bot's to archive.
    let last = if ic.linked {
        json!({ "type": "context", "block_id": "timeline_linked", "elements": [{
            "type": "mrkdwn",
            "text": "This channel was linked to the alert, not opened by the bot: it stays as it is."
        }]})
    } else {
        json!({ "type": "actions", "block_id": "timeline_actions", "elements": [{
            "type": "button",
            "action_id": ARCHIVE_CHANNEL_ACTION,
            "text": { "type": "plain_text", "text": "Archive channel" },
            "value": alert.id,
            "confirm": {
                "title": { "type": "plain_text", "text": "Archive this channel?" },
                "text": { "type": "mrkdwn", "text": "The channel is archived for everyone; its history stays searchable." },
                "confirm": { "type": "plain_text", "text": "Archive" },
                "deny": { "type": "plain_text", "text": "Cancel" }
            }
        }]})
    };
    let payload = json!({
        "channel": channel,
        "text": format!("Timeline of {} ({} events)", alert.asset_name(), lines.len()),
        "blocks": [
            { "type": "section", "block_id": "timeline_head", "text": { "type": "mrkdwn", "text": text } },
            { "type": "section", "block_id": "timeline_body", "text": { "type": "mrkdwn", "text": body } },
            last
        ]
    });
    Ok(NewOutboxMessage {
        ordering_key: Some(incident_channel_order(&alert.id)),
        ..NewOutboxMessage::call(
            "chat.postMessage",
            payload,
            format!("incident:{}:timeline", alert.id),
        )
    })
}

/// The alert's history during its episode, oldest first: the audit log's
/// entries about every job it followed (a *Recreate* moves it to the new
/// job; what happened on the old one stays in its episode).
async fn episode_entries(
    state: &AppState,
    alert: &Alert,
    now: DateTime<Utc>,
) -> Result<Vec<AuditEntry>, AlertError> {
    let end = alert.resolved_at.unwrap_or(now);
    Ok(state
        .store
        .alert_history(alert, alert.opened_at, end, 1000)
        .await?)
}

/// One line per entry: when, who (by name, which notifies nobody), what and
/// how it ended; a band change says how the band and ETA moved.
async fn timeline_lines(
    state: &AppState,
    entries: &[AuditEntry],
    how: &str,
    now: DateTime<Utc>,
) -> Vec<String> {
    let mut out = Vec::new();
    for e in entries {
        let who = if e.actor == "bot" {
            "the bot".to_string()
        } else {
            state.directory.user_name(&e.actor).await
        };
        let when = time_token(e.at);
        let line = match e.action.as_str() {
            "band_changed" => {
                let d = e.detail.clone().unwrap_or(Value::Null);
                let eta = d
                    .get("eta_ms")
                    .and_then(Value::as_i64)
                    .and_then(DateTime::<Utc>::from_timestamp_millis)
                    .map(time_token)
                    .unwrap_or_else(|| "unknown".into());
                format!(
                    "• {when} band {} → *{}*, ETA {eta}",
                    d.get("from").and_then(Value::as_str).unwrap_or("?"),
                    d.get("to").and_then(Value::as_str).unwrap_or("?")
                )
            }
            action => format!(
                "• {when} {} {}: {}",
                escape_slack(&who),
                action.replace('_', " "),
                escape_slack(&e.outcome)
            ),
        };
        out.push(line);
    }
    out.push(format!("• {} resolved: {how}", time_token(now)));
    out
}

/// A time in each reader's zone.
fn time_token(t: DateTime<Utc>) -> String {
    format!(
        "<!date^{}^{{time}}|{}>",
        t.timestamp(),
        t.format("%H:%M UTC")
    )
}

/// The audit entry of a band change, for the timeline: from, to, the ETA.
pub fn band_change_entry(
    state: &AppState,
    alert: &Alert,
    from: RiskBand,
    to: RiskBand,
    eta: Option<DateTime<Utc>>,
) -> AuditEntry {
    audit_entry(
        state,
        alert,
        "bot",
        "band_changed",
        &format!("{} to {}", from.label(), to.label()),
        json!({
            "alert_id": alert.id,
            "from": from.label(),
            "to": to.label(),
            "eta_ms": eta.map(|t| t.timestamp_millis()),
        }),
    )
}

/// How an episode can end (issue 38), by value and label.
pub const ENDINGS: [(&str, &str); 4] = [
    ("mitigated", "Mitigated"),
    ("expected", "Expected"),
    ("false_alarm", "False alarm"),
    ("missed", "Missed"),
];

/// The label of an ending's value.
pub fn ending_label(value: &str) -> Option<&'static str> {
    ENDINGS.iter().find(|(v, _)| *v == value).map(|(_, l)| *l)
}

/// The question in a resolved alert's thread, asked once: how it ended.
pub fn ask_how_it_ended(state: &AppState, alert: &Alert) -> Result<NewOutboxMessage, AlertError> {
    let mut msg = thread_message(
        state,
        alert,
        format!("ended-ask:{}", alert.id),
        "How did it end?",
    )?;
    let buttons: Vec<Value> = ENDINGS
        .iter()
        .map(|(value, label)| {
            json!({
                "type": "button",
                // Unique within the block, as Slack requires.
                "action_id": format!("{DISPOSITION_ACTION}:{value}"),
                "text": { "type": "plain_text", "text": label },
                "value": format!("{}:{value}", alert.id),
            })
        })
        .collect();
    msg.payload = json!({
        "text": "How did it end? Mitigated, Expected, False alarm or Missed",
        "blocks": [
            { "type": "section", "block_id": "ended_ask", "text": { "type": "mrkdwn", "text":
                "*How did it end?* _Mitigated_ (an action saved it), _Expected_ (planned or accepted), _False alarm_ (the forecast was wrong) or _Missed_ (breached). Operators and the people paged may answer, once; the weekly review counts the answers." } },
            { "type": "actions", "block_id": "ended_choices", "elements": buttons }
        ]
    });
    Ok(msg)
}

/// Records how an episode ended (`by` an operator or someone paged,
/// checked by the caller), once: the audit entry, the note in the thread
/// and the alert's edit. `None` when it was answered already (the answer).
pub async fn record_how_it_ended(
    state: &AppState,
    alert: &Alert,
    by: &str,
    ending: &str,
    note: Option<String>,
) -> Result<Result<crate::store::Disposition, crate::store::Disposition>, AlertError> {
    if let Some(d) = state.store.disposition(&alert.id).await? {
        return Ok(Err(d));
    }
    let now = state.clock.now();
    let d = crate::store::Disposition {
        alert_id: alert.id.clone(),
        tenant_id: alert.tenant_id.clone(),
        job_id: alert.job_id.clone(),
        asset: alert.asset_name(),
        disposition: ending.to_string(),
        note,
        answered_by: by.to_string(),
        answered_at: now,
    };
    let note_msg = thread_message(
        state,
        alert,
        format!("ended:{}:answer", alert.id),
        &ended_line(&d),
    )?;
    let made = state
        .store
        .record_disposition_with(&d, now, |d| {
            let mut e = Effects::new();
            e.send(note_msg);
            e.record(audit_entry(
                state,
                alert,
                by,
                "how_it_ended",
                &d.disposition,
                json!({ "alert_id": alert.id, "note": d.note }),
            ));
            e.schedule(NewTimer {
                kind: BUTTONS_TIMER.into(),
                subject_id: alert.id.clone(),
                payload: Value::Null,
                due_at: now,
                dedup_key: Some(format!("ended:{}:edit", alert.id)),
            });
            e
        })
        .await?;
    match made {
        Some(d) => {
            state.wake_outbox();
            Ok(Ok(d))
        }
        None => Ok(Err(state.store.disposition(&alert.id).await?.unwrap_or(d))),
    }
}

/// What archiving came to.
#[derive(Debug, PartialEq)]
pub enum ArchiveOutcome {
    Archived(String),
    /// Archived already, by whom.
    Already(Option<String>),
    /// The episode has no channel to archive.
    NoChannel,
    /// The channel was linked, not created by the bot: not archived.
    Linked(String),
}

/// How long after *Archive channel* the bot reads what Slack made of the
/// archive call ([`archive_checked`]): the call goes out behind the
/// channel's last posts, within seconds.
pub const ARCHIVE_CHECK_AFTER: chrono::Duration = chrono::Duration::minutes(1);

/// Archives an episode's channel, once (`by` an operator, checked by the
/// caller): the audit entry, a last line saying who, the archive call, and
/// the step that reads Slack's answer to it ([`archive_checked`]). A linked
/// channel (one that existed before the episode) is refused, audited.
pub async fn archive(
    state: &AppState,
    alert: &Alert,
    by: &str,
) -> Result<ArchiveOutcome, AlertError> {
    let Some(ic) = state.store.incident_channel(&alert.id).await? else {
        return Ok(ArchiveOutcome::NoChannel);
    };
    let Some(channel) = ic.channel.clone() else {
        return Ok(ArchiveOutcome::NoChannel);
    };
    if ic.archived_at.is_some() {
        return Ok(ArchiveOutcome::Already(ic.archived_by));
    }
    if ic.linked {
        crate::flows::thread::audit(
            state,
            alert,
            by,
            "incident_channel_archive",
            "refused: a linked channel",
            json!({ "alert_id": alert.id, "channel": channel }),
        )
        .await;
        return Ok(ArchiveOutcome::Linked(channel));
    }
    let now = state.clock.now();
    let order = incident_channel_order(&alert.id);
    // Each archive has keys of its own: one Slack refused may be asked for
    // again once it is taken back.
    let stamp = now.timestamp_millis();
    let archive_key = format!("incident:{}:archive:{stamp}", alert.id);
    let archived = state
        .store
        .archive_incident_channel_with(&alert.id, by, now, |_| {
            let mut e = Effects::new();
            e.send(NewOutboxMessage {
                ordering_key: Some(order.clone()),
                ..NewOutboxMessage::call(
                    "chat.postMessage",
                    json!({
                        "channel": channel,
                        "text": format!(":file_cabinet: Archived by <@{by}> {}.", date_token(now)),
                    }),
                    format!("incident:{}:archived-note:{stamp}", alert.id),
                )
            });
            e.send(NewOutboxMessage {
                ordering_key: Some(order.clone()),
                ..NewOutboxMessage::call(
                    "conversations.archive",
                    json!({ "channel": channel }),
                    archive_key.clone(),
                )
            });
            e.schedule(NewTimer {
                kind: ARCHIVE_CHECK_TIMER.into(),
                subject_id: alert.id.clone(),
                payload: json!({ "key": archive_key, "archived_at_ms": stamp }),
                due_at: now + ARCHIVE_CHECK_AFTER,
                dedup_key: Some(format!("incident:{}:archive-check:{stamp}", alert.id)),
            });
            e.record(audit_entry(
                state,
                alert,
                by,
                "incident_channel_archive",
                "archived",
                json!({ "alert_id": alert.id, "channel": channel }),
            ));
            e.schedule(NewTimer {
                kind: BUTTONS_TIMER.into(),
                subject_id: alert.id.clone(),
                payload: Value::Null,
                due_at: now,
                dedup_key: Some(format!("incident:{}:archived-edit:{stamp}", alert.id)),
            });
            e
        })
        .await?;
    match archived {
        Some(_) => {
            state.wake_outbox();
            Ok(ArchiveOutcome::Archived(channel))
        }
        None => {
            let again = state.store.incident_channel(&alert.id).await?;
            Ok(ArchiveOutcome::Already(again.and_then(|i| i.archived_by)))
        }
    }
}

/// The claimed step after *Archive channel*: what Slack made of the archive
/// call (`payload`: its outbox key and the archive's time). Archived, or
/// archived already: nothing more. Refused for good (`restricted_action`,
/// `not_in_channel`, `cant_archive_general`, …): the channel is open, so the
/// store takes the archive back and the alert's thread and the channel say
/// that Slack refused and why, with the audit entry and the alert's edit, in
/// one commit; *Archive channel* may be clicked again. Still on its way: an
/// error, so the timer looks again.
pub async fn archive_checked(
    state: &AppState,
    alert_id: &str,
    payload: &Value,
) -> anyhow::Result<()> {
    let (Some(key), Some(at)) = (
        payload.get("key").and_then(Value::as_str),
        payload
            .get("archived_at_ms")
            .and_then(Value::as_i64)
            .and_then(DateTime::<Utc>::from_timestamp_millis),
    ) else {
        return Ok(());
    };
    let Some(ic) = state.store.incident_channel(alert_id).await? else {
        return Ok(());
    };
    let Some(channel) = ic.channel.clone().filter(|_| ic.archived_at == Some(at)) else {
        return Ok(()); // taken back already, or another archive's
    };
    let code = match state.store.outbox_fate(key).await? {
        None | Some((crate::store::OutboxStatus::Sent, _)) => return Ok(()),
        Some((crate::store::OutboxStatus::Pending, _)) => {
            anyhow::bail!("Slack has not answered the archive of {channel} yet")
        }
        Some((crate::store::OutboxStatus::Failed, why)) => {
            let why = why.unwrap_or_else(|| "refused".into());
            // "Slack refused conversations.archive: <code>"
            why.rsplit(": ").next().unwrap_or(&why).to_string()
        }
    };
    if code == "already_archived" {
        return Ok(());
    }
    let Some(alert) = state.store.get_alert(alert_id).await? else {
        return Ok(());
    };
    let now = state.clock.now();
    let note = thread_message(
        state,
        &alert,
        format!("incident:{alert_id}:archive-refused:{}", at.timestamp_millis()),
        &format!(
            ":warning: Slack would not archive the incident channel <#{channel}> ({}): it stays open. Archive it in Slack, or click *Archive channel* under its timeline again once that is fixed.",
            escape_slack(&code)
        ),
    )?;
    let line = NewOutboxMessage {
        ordering_key: Some(incident_channel_order(alert_id)),
        ..NewOutboxMessage::call(
            "chat.postMessage",
            json!({
                "channel": channel,
                "text": format!(":warning: Slack would not archive this channel ({}): it stays open.", escape_slack(&code)),
            }),
            format!(
                "incident:{alert_id}:archive-refused-line:{}",
                at.timestamp_millis()
            ),
        )
    };
    let taken_back = state
        .store
        .unarchive_incident_channel_with(alert_id, at, now, |_| {
            let mut e = Effects::new();
            e.send(note);
            e.send(line);
            e.record(audit_entry(
                state,
                &alert,
                "bot",
                "incident_channel_archive",
                &format!("refused by Slack: {code}"),
                json!({ "alert_id": alert_id, "channel": channel }),
            ));
            e.schedule(NewTimer {
                kind: BUTTONS_TIMER.into(),
                subject_id: alert_id.to_string(),
                payload: Value::Null,
                due_at: now,
                dedup_key: Some(format!(
                    "incident:{alert_id}:archive-refused-edit:{}",
                    at.timestamp_millis()
                )),
            });
            e
        })
        .await?;
    if taken_back.is_some() {
        tracing::warn!(
            alert = alert_id,
            channel,
            code,
            "Slack refused to archive an incident channel; it stays open"
        );
        state.wake_outbox();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn day() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).unwrap()
    }

    fn valid(name: &str) -> bool {
        name.chars().count() <= MAX_NAME
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    }

    #[test]
    fn a_name_is_the_prefix_the_asset_and_the_day_in_slacks_rules() {
        assert_eq!(
            channel_name("sla-", "revenue_daily", day()),
            "sla-revenue_daily-0302"
        );
        assert_eq!(
            channel_name("sla-", "Revenue Daily", day()),
            "sla-revenue-daily-0302"
        );
        assert_eq!(
            channel_name("sla-", "Éco.Revenue/daily!!", day()),
            "sla-co-revenue-daily-0302"
        );
        assert_eq!(channel_name("sla-", "!!!", day()), "sla-job-0302");
        let long = channel_name("sla-", &"x".repeat(200), day());
        assert!(valid(&long), "{long}");
        assert!(valid(&numbered(&long, 17)), "{}", numbered(&long, 17));
        assert_eq!(numbered("sla-a-0302", 1), "sla-a-0302");
        assert_eq!(numbered("sla-a-0302", 2), "sla-a-0302-2");
        for asset in ["a b", "A-B", "über", "x.y", "__", "a--b", "日本"] {
            let n = channel_name("sla-", asset, day());
            assert!(valid(&n), "{asset} -> {n}");
        }
    }

    #[test]
    fn the_topic_fits_slacks_250_characters() {
        let alert = Alert {
            id: "a1".into(),
            tenant_id: "acme".into(),
            job_id: "7f3c2a9e-0b1d".into(),
            episode: 1,
            status: crate::store::AlertStatus::Open,
            band: RiskBand::High,
            severity: None,
            eta: None,
            deadline: Some(day()),
            shown: Some(json!({ "asset": "y".repeat(400) })),
            channel: Some("C1".into()),
            ts: Some("1700000000.000100".into()),
            acked_by: None,
            acked_at: None,
            opened_at: day(),
            updated_at: day(),
            resolved_at: None,
            resolution: None,
            version: 1,
        };
        let t = topic(&alert);
        assert!(t.chars().count() <= 250, "{}", t.len());
        assert!(t.ends_with("https://slack.com/archives/C1/p1700000000000100"));
        let mut short = alert.clone();
        short.shown = Some(json!({ "asset": "revenue_daily" }));
        assert_eq!(
            topic(&short),
            "revenue_daily (job 7f3c2a9e) · High · deadline 2026-03-02 10:00 UTC · https://slack.com/archives/C1/p1700000000000100"
        );
    }
}
