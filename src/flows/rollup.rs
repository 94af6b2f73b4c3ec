//! Alert storms read as one incident (issue 22). When more of a tenant's
//! jobs than `alerts.rollup_after` are at risk in one poll, the tenant's
//! channel gets one roll-up message, edited in place: the count by band, the
//! jobs worst first (capped, "…and N more" with `/backfill list at-risk`),
//! and the signals they share. Each alert opened while it is open is a reply
//! in its thread instead of a message of its own: its buttons and its
//! escalation work as before. A job that recovers leaves the list; the
//! roll-up resolves when the last of its jobs does.
//!
//! A job waiting on upstream jobs at risk with it is one alert (issue 37):
//! the roll-up lists those upstream jobs under it, not as jobs of their own.
//!
//! Decided before the poll's alerts are reconciled, from the same
//! assessments, so the roll-up's post goes before the alerts that reply to it.

use crate::config::Tenant;
use crate::context::AppState;
use crate::domain::assessment::{Assessment, Bottleneck};
use crate::domain::risk::RiskBand;
use crate::domain::text::date_token;
use crate::domain::text::escape_slack;
use crate::flows::lineage::Trees;
use crate::servo::Job;
use crate::store::{rollup_post_key, AuditEntry, Effects, NewOutboxMessage};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Value};

/// What the roll-up message shows (`templates/rollup.hbs`).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct RollupView {
    pub text: String,
    pub headline: String,
    pub counts: String,
    pub jobs: String,
    pub signals: String,
    /// The jobs beyond `jobs`, by name only, grouped by band, one section
    /// each of at most [`OTHERS_SECTIONS`]: the channel names every job of
    /// a storm at once, before their alerts come in at Slack's pace of one
    /// post a second (issues 35 and 40: 500 jobs in four sections).
    pub others: Vec<String>,
    pub footer: String,
    /// The roll-up's id while it is open: its **Acknowledge** button
    /// acknowledges the paging of all its jobs (issue 35).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ack: Option<String>,
}

/// The roll-up of `at_risk` (riskiest first), or its last word once none is.
/// An upstream job folded into its root's alert (`trees`) is listed under
/// the root, not as a job of its own.
pub fn view(
    tenant: &Tenant,
    at_risk: &[(&Job, &Assessment)],
    trees: &Trees,
    cap: usize,
) -> RollupView {
    let tenant_name = escape_slack(&tenant.id);
    if at_risk.is_empty() {
        return RollupView {
            text: format!("Resolved: no job of {tenant_name} is at risk any more."),
            headline: format!("Resolved: {} jobs back on track", tenant.id),
            counts: ":large_green_circle: No job of this tenant is at risk any more.".into(),
            jobs: String::new(),
            signals: String::new(),
            others: Vec::new(),
            footer: "Each job's alert in this thread says how it ended.".into(),
            ack: None,
        };
    }
    let nested = nested(at_risk, trees);
    let alerts: Vec<(&Job, &Assessment)> = at_risk
        .iter()
        .filter(|(j, _)| !nested.contains(&j.id))
        .copied()
        .collect();
    // Each root's upstream jobs at risk with it, worst first, by the root.
    let under = |root: &Job| -> Vec<&str> {
        trees
            .children
            .get(&root.id)
            .map(|cs| {
                cs.iter()
                    .filter(|(id, b, _)| b.is_at_risk() && nested.contains(id))
                    .map(|(_, _, line)| line.as_str())
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut by_band: Vec<(RiskBand, usize)> = Vec::new();
    for band in [
        RiskBand::Breached,
        RiskBand::High,
        RiskBand::Medium,
        RiskBand::Low,
    ] {
        let n = alerts.iter().filter(|(_, a)| a.band == band).count();
        if n > 0 {
            by_band.push((band, n));
        }
    }
    let mut counts = by_band
        .iter()
        .map(|(b, n)| format!("{} *{n}* {}", b.emoji(), b.label()))
        .collect::<Vec<_>>()
        .join("   ");
    if !nested.is_empty() {
        counts.push_str(&format!(
            "   :arrow_up: *{}* upstream, listed under the job {} up",
            nested.len(),
            if nested.len() == 1 {
                "it holds"
            } else {
                "they hold"
            }
        ));
    }
    let lines: Vec<String> = alerts
        .iter()
        .take(cap)
        .map(|(job, a)| {
            let mut line = format!(
                "{} *{}* {}: ETA {}, deadline {}",
                a.band.emoji(),
                escape_slack(&job.asset_name),
                a.band.label(),
                a.eta.map(date_token).unwrap_or_else(|| "unknown".into()),
                job.sla_deadline_at
                    .map(date_token)
                    .unwrap_or_else(|| "none".into()),
            );
            for child in under(job) {
                line.push_str(&format!("\n\u{2003}↳ waiting on {child}"));
            }
            line
        })
        .collect();
    // Within one section (3,000 characters): capped by count, then by
    // length, and the others below begin after the lines shown, so that
    // every job is named (a line cut by length used to be named nowhere:
    // issue 40's storm bench found one of 40 jobs missing).
    let more = |n: usize| format!("…and {n} more: `/backfill list at-risk` shows them all.");
    let capped = alerts.len() - lines.len();
    let (jobs, shown) =
        crate::slack::limits::join_capped_shown(&lines, "\n", DETAIL_CHARS, capped, more);
    RollupView {
        // Counted in alerts, as its page counts them: the upstream jobs
        // are in the counts line.
        text: format!(
            "{} of {tenant_name} at risk together",
            crate::domain::text::count(alerts.len(), "job", "jobs")
        ),
        headline: format!(
            "{} of {} at risk together",
            crate::domain::text::count(alerts.len(), "job", "jobs"),
            tenant.id
        ),
        counts,
        jobs,
        signals: signals(at_risk),
        others: others(
            &alerts[shown..]
                .iter()
                .map(|(j, a)| {
                    let mut name = escape_slack(&j.asset_name);
                    let ups: Vec<String> = trees
                        .children
                        .get(&j.id)
                        .into_iter()
                        .flatten()
                        .filter(|(id, _, _)| nested.contains(id))
                        .filter_map(|(id, _, _)| at_risk.iter().find(|(c, _)| c.id == *id))
                        .map(|(c, _)| escape_slack(&c.asset_name))
                        .collect();
                    if !ups.is_empty() {
                        name.push_str(&format!(" (waiting on {})", ups.join(", ")));
                    }
                    (a.band, name)
                })
                .collect::<Vec<_>>(),
        ),
        footer: "Each job's alert, with its buttons, is a reply in this thread.".into(),
        ack: None,
    }
}

/// The jobs of `at_risk` folded into a root's alert that is itself in
/// `at_risk`: they are listed under it. A folded job whose root is not at
/// risk (it cannot be folded then, but the poll's reads may disagree) keeps
/// a line of its own.
fn nested(at_risk: &[(&Job, &Assessment)], trees: &Trees) -> std::collections::HashSet<uuid::Uuid> {
    let ids: std::collections::HashSet<uuid::Uuid> = at_risk.iter().map(|(j, _)| j.id).collect();
    at_risk
        .iter()
        .filter(|(j, _)| trees.folded.contains(&j.id))
        .filter(|(j, _)| j.parent_job_id.is_some_and(|p| ids.contains(&p)))
        .map(|(j, _)| j.id)
        .collect()
}

/// How many sections of names a roll-up has at most (of the 50 blocks a
/// message may have): about a thousand jobs by name.
pub const OTHERS_SECTIONS: usize = 10;

/// What the detailed lines hold at most, with their "…and N more".
const DETAIL_CHARS: usize = 2_800;

/// What one section of names holds at most (Slack allows 3,000).
const SECTION_CHARS: usize = 2_800;

/// The jobs a roll-up does not detail, by name, grouped by band (worst
/// first), in sections of at most [`SECTION_CHARS`]; past
/// [`OTHERS_SECTIONS`] the last one says how many more. The names come
/// escaped for Slack.
fn others(rest: &[(RiskBand, String)]) -> Vec<String> {
    let mut sections: Vec<String> = Vec::new();
    let mut current = String::from("Also at risk:");
    let mut shown = 0;
    for band in [
        RiskBand::Breached,
        RiskBand::High,
        RiskBand::Medium,
        RiskBand::Low,
    ] {
        let names: Vec<String> = rest
            .iter()
            .filter(|(b, _)| *b == band)
            .map(|(_, name)| name.clone())
            .collect();
        let mut first = true;
        for name in names {
            let lead = if first {
                format!("\n{} *{}*: ", band.emoji(), band.label())
            } else {
                ", ".into()
            };
            // Room for "…and N more" at the end of the last section.
            let room = if sections.len() + 1 == OTHERS_SECTIONS {
                SECTION_CHARS - 40
            } else {
                SECTION_CHARS
            };
            if current.chars().count() + lead.chars().count() + name.chars().count() > room {
                if sections.len() + 1 == OTHERS_SECTIONS {
                    current.push_str(&format!(" …and {} more", rest.len() - shown));
                    sections.push(current);
                    return sections;
                }
                sections.push(std::mem::take(&mut current));
                current = format!("{} *{}*: ", band.emoji(), band.label());
                first = false;
                current.push_str(&name);
            } else {
                current.push_str(&lead);
                current.push_str(&name);
                first = false;
            }
            shown += 1;
        }
    }
    if shown > 0 {
        sections.push(current);
    }
    sections
}

/// What the jobs at risk have in common, as one line: the bottlenecks that
/// two or more of them share.
pub fn signals(at_risk: &[(&Job, &Assessment)]) -> String {
    let mut upstream = 0;
    let mut rising = 0;
    let mut failing = 0;
    let mut paused = 0;
    for (_, a) in at_risk {
        for b in &a.bottlenecks {
            match b {
                Bottleneck::WaitingUpstream { .. } => upstream += 1,
                Bottleneck::DurationsRising { .. } => rising += 1,
                Bottleneck::FailedPartitions { .. } => failing += 1,
                Bottleneck::Paused { .. } => paused += 1,
            }
        }
    }
    let mut out = Vec::new();
    for (n, what) in [
        (upstream, "waiting on upstream jobs"),
        (rising, "with partition durations rising"),
        (failing, "with partitions failing"),
        (paused, "paused"),
    ] {
        if n >= 2 {
            out.push(format!("{n} {what}"));
        }
    }
    if out.is_empty() {
        String::new()
    } else {
        format!("Shared signals: {}.", out.join(", "))
    }
}

fn render(state: &AppState, v: &RollupView) -> anyhow::Result<Value> {
    Ok(state.templates.render("rollup", v)?)
}

/// Opens, edits or resolves the tenant's roll-up from this poll's
/// assessments. Returns the open roll-up new alerts reply under, if any.
pub async fn reconcile(
    state: &AppState,
    tenant: &Tenant,
    assessed: &[(&Job, Assessment)],
    trees: &Trees,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<String>> {
    let mut at_risk: Vec<(&Job, &Assessment)> = assessed
        .iter()
        .filter(|(_, a)| a.band.is_at_risk())
        .map(|(j, a)| (*j, a))
        .collect();
    at_risk.sort_by(|x, y| Assessment::riskiest_first(x.1, y.1));
    let cap = state.config.alerts.rollup_lists;
    let audit = |action: &str, outcome: String| AuditEntry {
        at: now,
        tenant_id: Some(tenant.id.clone()),
        actor: "bot".into(),
        action: action.into(),
        subject: None,
        outcome,
        detail: Some(json!({ "at_risk": at_risk.len() })),
    };
    // A storm is counted in alerts: upstream jobs folded into their root's
    // alert are not alerts of their own.
    let alerts = at_risk.len() - nested(&at_risk, trees).len();
    match state.store.open_rollup(&tenant.id).await? {
        None if alerts > state.config.alerts.rollup_after => {
            let id = uuid::Uuid::new_v4().to_string();
            let mut v = view(tenant, &at_risk, trees, cap);
            v.ack = Some(id.clone());
            let mut payload = render(state, &v)?;
            payload["channel"] = tenant.channel.as_str().into();
            let mut post =
                NewOutboxMessage::call("chat.postMessage", payload, rollup_post_key(&id));
            post.ordering_key = Some(format!("rollup:{id}"));
            let mut effects = Effects::new();
            effects.send(post).record(audit("rollup_open", "ok".into()));
            let shown = serde_json::to_value(&v)?;
            if state
                .store
                .open_rollup_with(&id, &tenant.id, &shown, &effects, now)
                .await?
            {
                state.wake_outbox();
                state
                    .metrics
                    .inc("servo_sla_bot_rollups_total", &[("event", "opened")]);
                tracing::info!(tenant = %tenant.id, at_risk = at_risk.len(), "alert storm: roll-up opened");
                return Ok(Some(id));
            }
            // Another replica opened it first.
            Ok(state.store.open_rollup(&tenant.id).await?.map(|r| r.id))
        }
        None => Ok(None),
        Some(r) => {
            let resolve = at_risk.is_empty();
            let mut v = view(tenant, &at_risk, trees, cap);
            if !resolve {
                v.ack = Some(r.id.clone());
            }
            let shown = serde_json::to_value(&v)?;
            if r.shown.as_ref() == Some(&shown) {
                return Ok(Some(r.id));
            }
            let mut edit = NewOutboxMessage::call(
                "chat.update",
                render(state, &v)?,
                format!("rollup:{}:edit:{}", r.id, uuid::Uuid::new_v4().simple()),
            );
            edit.ordering_key = Some(format!("rollup:{}", r.id));
            edit.thread_alert_id = Some(format!("rollup:{}", r.id));
            edit.thread_field = Some("ts".into());
            let mut effects = Effects::new();
            effects.send(edit);
            if resolve {
                effects.record(audit("rollup_resolve", "ok".into()));
            }
            if state
                .store
                .update_rollup_with(&r.id, &shown, resolve, &effects, now)
                .await?
            {
                state.wake_outbox();
                if resolve {
                    state
                        .metrics
                        .inc("servo_sla_bot_rollups_total", &[("event", "resolved")]);
                }
            }
            if resolve {
                // Its one escalation ends with it (issue 35).
                crate::flows::group_paging::stop(state, &r.id, &tenant.id, "the roll-up resolved")
                    .await?;
            }
            Ok((!resolve).then_some(r.id))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(n: usize, band: RiskBand, prefix: &str) -> Vec<(RiskBand, String)> {
        (0..n).map(|i| (band, format!("{prefix}_{i:04}"))).collect()
    }

    #[test]
    fn five_hundred_jobs_are_all_named_by_band_in_sections_slack_accepts() {
        let mut rest = named(300, RiskBand::High, "high");
        rest.extend(named(200, RiskBand::Medium, "medium"));
        let sections = others(&rest);
        assert!(sections.len() <= OTHERS_SECTIONS, "{}", sections.len());
        assert!(sections.iter().all(|s| s.chars().count() <= SECTION_CHARS));
        let all = sections.join("\n");
        let words: std::collections::HashSet<&str> = all.split([',', ' ', '\n']).collect();
        for (_, name) in &rest {
            assert!(words.contains(name.as_str()), "{name} is not named");
        }
        assert!(!all.contains("more"), "nobody left out");
        assert!(
            sections[0].starts_with("Also at risk:\n:red_circle: *High*: high_0000, high_0001"),
            "{}",
            sections[0]
        );
        assert!(all.contains("*Medium*: medium_0000"), "{all}");
    }

    #[test]
    fn beyond_its_sections_a_roll_up_says_how_many_more() {
        let rest: Vec<(RiskBand, String)> = (0..5_000)
            .map(|i| (RiskBand::Low, format!("storm_asset_{i:04}")))
            .collect();
        let sections = others(&rest);
        assert_eq!(sections.len(), OTHERS_SECTIONS);
        assert!(sections.iter().all(|s| s.chars().count() <= SECTION_CHARS));
        let last = sections.last().unwrap();
        let shown: usize = sections
            .iter()
            .map(|s| s.matches("storm_asset_").count())
            .sum();
        assert!(
            last.ends_with(&format!(" …and {} more", 5_000 - shown)),
            "{last}"
        );
        assert!(others(&[]).is_empty());
    }
}
