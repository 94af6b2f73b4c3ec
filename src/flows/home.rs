//! The App Home: one view per person, built for them from the tenants they
//! belong to (an operator, a stakeholder, or on a tier of the escalation
//! path), and nothing of any other tenant:
//! - pages waiting for their acknowledgement, each with Acknowledge;
//! - extension requests waiting for their decision, linked to the thread;
//! - the jobs at risk, worst first, each linked to its alert;
//! - who is on which tier of the escalation path;
//! - their own recent actions.
//!
//! Published when they open it, and again after a change in one of their
//! tenants ([`touch`]): a timer per person, one per [`DEBOUNCE`] window, so a
//! burst of changes publishes once. Publishing is kept under Slack's Tier 4
//! (about 100 `views.publish` a minute) by [`PUBLISH_PER_MINUTE`]; a publish
//! over it is handed back to its timer, which tries again later.

use crate::config::Tenant;
use crate::context::AppState;
use crate::domain::text::date_token;
use crate::domain::text::escape_slack;
use crate::store::Alert;
use serde_json::{json, Value};
use std::sync::Mutex;
use std::time::Instant;

/// Under Slack's Tier 4 (about 100 a minute), leaving room for other callers.
const PUBLISH_PER_MINUTE: f64 = 80.0;
/// Slack's limit for a Home view.
const MAX_BLOCKS: usize = 100;
/// Lines per list in a section (a section's text holds 3000 characters).
const MAX_LINES: usize = 12;

/// A token bucket for `views.publish`, shared by the process.
struct Budget {
    tokens: f64,
    at: Instant,
}

static BUDGET: Mutex<Option<Budget>> = Mutex::new(None);

fn take_budget() -> bool {
    let mut guard = BUDGET.lock().unwrap_or_else(|e| e.into_inner());
    let b = guard.get_or_insert(Budget {
        tokens: 20.0,
        at: Instant::now(),
    });
    let refill = b.at.elapsed().as_secs_f64() * PUBLISH_PER_MINUTE / 60.0;
    b.tokens = (b.tokens + refill).min(20.0);
    b.at = Instant::now();
    if b.tokens >= 1.0 {
        b.tokens -= 1.0;
        true
    } else {
        false
    }
}

/// `app_home_opened` on the Home tab: publish it now.
pub async fn opened(state: &AppState, user: &str) -> anyhow::Result<()> {
    state.store.home_opened(user, state.clock.now()).await?;
    state.home_viewers.forget();
    publish(state, user).await
}

/// Builds `user`'s Home and publishes it.
pub async fn publish(state: &AppState, user: &str) -> anyhow::Result<()> {
    // Which tiers of each tenant's path the user is on (named, or in a
    // rotation of the tier): asked once, used throughout.
    let mut on_tier = OnTier::new();
    for t in &state.config.tenants {
        let mut mine = Vec::new();
        for tier in &state.config.escalation_for(&t.id).tiers {
            let anyone = crate::flows::oncall::anyone_on(state, tier).await;
            mine.push(state.directory.is_among(user, &anyone).await?);
        }
        on_tier.insert(t.id.clone(), mine);
    }
    let tenants = tenants_of(state, user, &on_tier).await?;
    let view = build(state, user, &tenants, &on_tier).await?;
    if !take_budget() {
        anyhow::bail!("over the views.publish budget; trying again shortly");
    }
    state
        .slack
        .call("views.publish", &json!({ "user_id": user, "view": view }))
        .await?;
    let ids: Vec<String> = tenants.iter().map(|t| t.id.clone()).collect();
    state
        .store
        .record_home(user, &ids, state.clock.now())
        .await?;
    state.home_viewers.forget();
    Ok(())
}

/// Per tenant, whether the user is on each tier of its path.
type OnTier = std::collections::HashMap<String, Vec<bool>>;

/// The tenants `user` belongs to: operator, stakeholder, or on a tier of
/// the tenant's escalation path (its own, or the global one it follows).
async fn tenants_of<'a>(
    state: &'a AppState,
    user: &str,
    on_tier: &OnTier,
) -> anyhow::Result<Vec<&'a Tenant>> {
    let mut mine = Vec::new();
    for t in &state.config.tenants {
        let on_path = on_tier.get(&t.id).is_some_and(|v| v.contains(&true));
        if on_path || state.directory.is_among(user, &t.people()).await? {
            mine.push(t);
        }
    }
    Ok(mine)
}

fn section(text: String) -> Value {
    json!({ "type": "section", "text": { "type": "mrkdwn", "text": text } })
}

fn header(text: &str) -> Value {
    json!({ "type": "header", "text": { "type": "plain_text", "text": text } })
}

fn context(text: String) -> Value {
    json!({ "type": "context", "elements": [ { "type": "mrkdwn", "text": text } ] })
}

/// Lines joined under Slack's 3000 characters, with "…and N more".
fn lines_text(lines: &[String], more_hint: &str) -> String {
    let mut out = String::new();
    let mut shown = 0;
    for line in lines.iter().take(MAX_LINES) {
        if out.len() + line.len() + 1 > 2_800 {
            break;
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(line);
        shown += 1;
    }
    if shown < lines.len() {
        out.push_str(&format!("\n…and {} more{more_hint}", lines.len() - shown));
    }
    out
}

fn shown_str(alert: &Alert, key: &str) -> Option<String> {
    alert
        .shown
        .as_ref()
        .and_then(|v| v.get(key))
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// A link to the alert's message, or the asset's name alone before it is posted.
fn alert_name(alert: &Alert) -> String {
    let asset = escape_slack(&alert.asset_name());
    match (&alert.channel, &alert.ts) {
        (Some(c), Some(ts)) => format!(
            "<https://slack.com/archives/{c}/p{}|{asset}>",
            ts.replace('.', "")
        ),
        _ => format!("*{asset}*"),
    }
}

/// The tier an active escalation paged last, from the next one it will page.
fn paged_tier(next: i64, tiers: usize) -> Option<usize> {
    match next {
        -1 => tiers.checked_sub(1),
        0 => None,
        n => usize::try_from(n - 1).ok().filter(|t| *t < tiers),
    }
}

async fn build(
    state: &AppState,
    user: &str,
    tenants: &[&Tenant],
    on_tier: &OnTier,
) -> anyhow::Result<Value> {
    let now = state.clock.now();
    let mut blocks = vec![
        header("Backfill SLA: what waits for you"),
        context(format!(
            "Updated {}. Tenants: {}.",
            date_token(now),
            if tenants.is_empty() {
                "none".to_string()
            } else {
                tenants
                    .iter()
                    .map(|t| format!("`{}`", t.id))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        )),
    ];
    if tenants.is_empty() {
        blocks.push(section(
            "You are not an operator or a stakeholder of any tenant, nor on the escalation path, so nothing waits for you here. Ask the bot's operators to add you to a tenant's `operators` or `stakeholders`, or to a tier of `[escalation]`, in its config.".into(),
        ));
        return Ok(json!({ "type": "home", "blocks": blocks }));
    }
    let mut pages: Vec<(Alert, String)> = Vec::new();
    let mut at_risk: Vec<Alert> = Vec::new();
    let mut requests: Vec<String> = Vec::new();
    for tenant in tenants {
        let tiers = &state.config.escalation_for(&tenant.id).tiers;
        let on_tier = on_tier.get(&tenant.id).map(Vec::as_slice).unwrap_or(&[]);
        let alerts = state.store.list_open_alerts(Some(&tenant.id)).await?;
        for alert in alerts {
            if alert.acked_by.is_none() {
                if let Some(esc) = state.store.get_escalation(&alert.id).await? {
                    if esc.status == "active" {
                        if let Some(last) = paged_tier(esc.tier, tiers.len()) {
                            // Paged at a tier of theirs in this round.
                            if let Some(t) = (0..=last).find(|t| on_tier.get(*t) == Some(&true)) {
                                pages.push((alert.clone(), tiers[t].name.clone()));
                            }
                        }
                    }
                }
            }
            if alert.band.is_at_risk() {
                at_risk.push(alert);
            }
        }
        for approval in state
            .store
            .list_approvals(Some(&tenant.id), Some("pending"))
            .await?
        {
            if crate::flows::approvals::refusal(state, user, &approval)
                .await?
                .is_none()
            {
                let thread = match (&approval.channel, &approval.ts) {
                    (Some(c), Some(ts)) => format!(
                        " · <https://slack.com/archives/{c}/p{}|decide in the thread>",
                        ts.replace('.', "")
                    ),
                    _ => String::new(),
                };
                let asset = match &approval.alert_id {
                    Some(id) => state
                        .store
                        .get_alert(id)
                        .await?
                        .map(|a| escape_slack(&a.asset_name()))
                        .unwrap_or_else(|| format!("`{}`", approval.job_id)),
                    None => format!("`{}`", approval.job_id),
                };
                requests.push(format!(
                    "• *{asset}*: {} → {}, asked by <@{}>{thread}",
                    date_token(approval.current_deadline),
                    date_token(approval.proposed_deadline),
                    approval.requested_by
                ));
            }
        }
    }

    pages.sort_by(|(a, _), (b, _)| b.band.cmp(&a.band).then(a.opened_at.cmp(&b.opened_at)));
    blocks.push(header("Pages waiting for your acknowledgement"));
    if pages.is_empty() {
        blocks.push(context("Nothing: nobody is waiting for you.".into()));
    }
    let shown_pages = pages.len().min(10);
    for (alert, tier) in pages.iter().take(shown_pages) {
        let band = alert.band;
        blocks.push(json!({
            "type": "section",
            "text": { "type": "mrkdwn", "text": format!(
                "{} {} · {} · paged as *{}*",
                band.emoji(), alert_name(alert), band.label(), escape_slack(tier)) },
            "accessory": {
                "type": "button",
                "action_id": crate::flows::ids::ACK_ACTION,
                "value": alert.id,
                "style": "primary",
                "text": { "type": "plain_text", "text": "Acknowledge" }
            }
        }));
    }
    if pages.len() > shown_pages {
        blocks.push(context(format!(
            "…and {} more {}: acknowledge them in their threads.",
            pages.len() - shown_pages,
            crate::domain::text::noun(pages.len() - shown_pages, "page", "pages")
        )));
    }

    blocks.push(header("Extension requests waiting for your decision"));
    blocks.push(if requests.is_empty() {
        context("Nothing to decide.".into())
    } else {
        section(lines_text(&requests, ": see the alerts' threads."))
    });

    blocks.push(header("Jobs at risk"));
    at_risk.sort_by(|a, b| {
        b.band
            .cmp(&a.band)
            .then(
                b.severity
                    .unwrap_or(0.0)
                    .total_cmp(&a.severity.unwrap_or(0.0)),
            )
            .then(a.opened_at.cmp(&b.opened_at))
    });
    let risk_lines: Vec<String> = at_risk
        .iter()
        .map(|a| {
            let eta = shown_str(a, "eta_token")
                .or_else(|| a.eta.map(date_token))
                .unwrap_or_else(|| "unknown".into());
            let deadline = a.deadline.map(date_token).unwrap_or_else(|| "none".into());
            format!(
                "{} {} · *{}* · ETA {eta} · deadline {deadline}{}",
                a.band.emoji(),
                alert_name(a),
                a.band.label(),
                if tenants.len() > 1 {
                    format!(" · `{}`", a.tenant_id)
                } else {
                    String::new()
                }
            )
        })
        .collect();
    blocks.push(if risk_lines.is_empty() {
        context("No job is at risk.".into())
    } else {
        section(lines_text(
            &risk_lines,
            ": `/backfill list at-risk` lists them all.",
        ))
    });

    // Issue 35: the silences in force in these tenants, only when there are some.
    let mut silences = Vec::new();
    for t in tenants {
        silences.extend(state.store.active_silences(Some(&t.id), now).await?);
    }
    if !silences.is_empty() {
        blocks.push(header("Silences in force"));
        let lines: Vec<String> = silences
            .iter()
            .map(crate::flows::quiet::silence_line)
            .collect();
        blocks.push(section(lines_text(
            &lines,
            ": `/backfill silences` lists them all.",
        )));
    }

    // Issue 36: the user's own on-call shifts, now and next.
    let shifts = your_shifts(state, user, tenants, now).await;
    blocks.push(header("On the escalation path now"));
    if !shifts.is_empty() {
        blocks.push(section(shifts.join("\n")));
    }
    // One list per path: the tenants with their own, and those following
    // the global one (named when there is more than one list).
    let mut groups: Vec<(Vec<&str>, Option<&str>)> = Vec::new();
    for t in tenants {
        let own = t.escalation.as_ref().map(|_| t.id.as_str());
        match groups.iter_mut().find(|(_, o)| *o == own && own.is_none()) {
            Some((ids, _)) => ids.push(&t.id),
            None => groups.push((vec![&t.id], own)),
        }
    }
    let mut path = Vec::new();
    for (ids, _) in &groups {
        let tenant = ids[0];
        let resolved = crate::flows::oncall::path(state, tenant, now).await;
        let on_tier = on_tier.get(tenant).map(Vec::as_slice).unwrap_or(&[]);
        if groups.len() > 1 {
            path.push(format!(
                "_{}_",
                ids.iter()
                    .map(|i| format!("`{i}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        for (i, tier) in resolved.tiers.iter().enumerate() {
            let you = if on_tier.get(i) == Some(&true) {
                " (you)"
            } else {
                ""
            };
            path.push(format!(
                "{}. *{}*: {}{you} · acknowledge within {} min",
                i + 1,
                escape_slack(&tier.name),
                state.directory.names(&tier.notify).await,
                tier.ack_timeout.as_secs().div_ceil(60)
            ));
        }
    }
    blocks.push(section(lines_text(&path, ".")));

    blocks.push(header("Your recent actions"));
    let mine: Vec<String> = state
        .store
        .audit_by_actor(user, 20)
        .await?
        .into_iter()
        // Only what concerns the tenants shown here.
        .filter(|e| {
            e.tenant_id
                .as_deref()
                .is_none_or(|t| tenants.iter().any(|x| x.id == t))
        })
        .take(8)
        .map(|e| {
            format!(
                "• {} · {} `{}` · {}",
                date_token(e.at),
                escape_slack(&e.action.replace('_', " ")),
                escape_slack(e.subject.as_deref().unwrap_or("-")),
                escape_slack(&e.outcome)
            )
        })
        .collect();
    blocks.push(if mine.is_empty() {
        context("None yet.".into())
    } else {
        section(lines_text(&mine, "."))
    });
    blocks.truncate(MAX_BLOCKS);
    Ok(json!({ "type": "home", "blocks": blocks }))
}

/// "You are on call for acme as On-call Engineer until Mon 09:00", per
/// rotation the user is on now, and their next shift.
async fn your_shifts(
    state: &AppState,
    user: &str,
    tenants: &[&Tenant],
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<String> {
    let mut lines = Vec::new();
    let mut next_shown = std::collections::HashSet::new();
    for t in tenants {
        for tier in &state.config.escalation_for(&t.id).tiers {
            for id in &tier.rotations {
                let Some(rotation) = state.config.rotation(id) else {
                    continue;
                };
                let (current, _) = crate::flows::oncall::on_call(state, rotation, now).await;
                if let Some(c) = current.filter(|c| c.user == user) {
                    lines.push(format!(
                        ":pager: You are on call for {} as {} until {}.",
                        escape_slack(&t.id),
                        escape_slack(&tier.name),
                        date_token(c.until)
                    ));
                }
                if !next_shown.insert(id.clone()) {
                    continue;
                }
                if let Some(next) = rotation.next_shift_of(user, now) {
                    lines.push(format!(
                        "Your next shift on `{}`: {} to {}.",
                        escape_slack(id),
                        date_token(next.from),
                        date_token(next.until)
                    ));
                }
            }
        }
    }
    lines
}
