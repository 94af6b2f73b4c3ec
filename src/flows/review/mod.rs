//! The SLA review: weekly in each tenant's channel (`[review]`), and on
//! demand with `/backfill review [7d|30d]`. Its numbers come from the bot's
//! own store (alerts, the audit log, extension requests, watched jobs, ETA
//! marks and samples, notices); [`compute`] is a pure function of those
//! rows, so a seeded history checks every figure.
//!
//! Also here: the burn-down chart a new alert gets in its thread, and the
//! pruning of history older than `review.retention`.

mod burn_down;
mod compute;
mod view;

pub use burn_down::*;
pub use compute::*;
pub use view::*;

use crate::context::AppState;
use crate::domain::assessment::Assessment;
use crate::domain::forecast::{PartitionObs, PartitionState};
use crate::domain::text::date_token;
use crate::domain::text::escape_slack;
use crate::flows::preventive::{pct, span};
use crate::servo::Job;
use crate::slack::charts::{BurnDown, Chart, ReviewCharts};
use crate::store::{
    Alert, Approval, ApprovalStatus, AuditEntry, EtaMark, EtaSample, Notice, StoreError, WatchedJob,
};
use chrono::{DateTime, Datelike, Duration, Timelike, Utc};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

/// Mitigations the review reports on, by their audit action.
pub const MITIGATIONS: [(&str, &str); 5] = [
    ("monitor", "Monitor closely"),
    ("pause", "Pause lower-priority jobs"),
    ("recreate", "Recreate with priority 10"),
    ("request_scaling", "Request scaling"),
    ("notify_stakeholders", "Notify stakeholders"),
];
/// A mitigation's effect is the ETA this long after it, against the ETA at it.
pub const EFFECT_AFTER: Duration = crate::flows::bought::AFTER;
/// Samples further than this from where they are wanted do not count.
const EFFECT_SLACK: Duration = Duration::hours(3);
/// Jobs listed as breached or as close calls, each.
const TOP: usize = 5;

/// Reads a tenant's review input for `[from, to)`. Jobs and marks reach
/// back far enough to see jobs that started before the period.
pub async fn load(
    state: &AppState,
    tenant: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<ReviewInput, StoreError> {
    let store = &state.store;
    Ok(ReviewInput {
        watched: store.watched_between(tenant, from, to).await?,
        marks: store.marks_completed_between(tenant, from, to).await?,
        alerts: store.alerts_between(tenant, from, to).await?,
        approvals: store.approvals_between(tenant, from, to).await?,
        // Pages just before the period can be acknowledged in it.
        audit: store
            .audit_between(tenant, from - Duration::days(1), to)
            .await?,
        samples: store
            .eta_samples(tenant, from - EFFECT_SLACK, to + EFFECT_SLACK)
            .await?,
        notices: store.notices_between(tenant, from, to).await?,
        dispositions: store.dispositions(tenant, from, to).await?,
    })
}

/// The start of a review of `[from, to)`: `from`, or later when the bot's
/// history of the tenant begins later (a review covers only what the bot
/// saw). `None` when it begins at or after `to`: nothing to review.
pub async fn covered_from(
    state: &AppState,
    tenant: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    Ok(match state.store.history_begins(tenant).await? {
        Some(first) if first < to => Some(first.max(from)),
        _ => None,
    })
}

/// The most recent scheduled weekly review time at or before `now`.
pub fn last_slot(cfg: &crate::config::ReviewConfig, now: DateTime<Utc>) -> DateTime<Utc> {
    let today = now.date_naive();
    let back = (today.weekday().num_days_from_monday() + 7 - cfg.day.num_days_from_monday()) % 7;
    let day = today - Duration::days(back as i64);
    let slot = day.and_time(cfg.at).and_utc();
    if slot <= now {
        slot
    } else {
        slot - Duration::days(7)
    }
}

/// How late a weekly review may still go out (after an outage, say).
const REVIEW_GRACE: Duration = Duration::hours(12);

/// Posts the week's review in each tenant's channel once its time has come
/// (one per tenant and week, whichever replica polls), and prunes history
/// past the retention. Runs from the poller.
pub async fn weekly(state: &AppState, now: DateTime<Utc>) -> Result<usize, anyhow::Error> {
    let cfg = &state.config.review;
    let mut posted = 0;
    if cfg.weekly {
        let slot = last_slot(cfg, now);
        if now - slot <= REVIEW_GRACE {
            for tenant in &state.config.tenants {
                let period = slot.to_rfc3339();
                if state.store.review_posted(&tenant.id, &period).await? {
                    continue;
                }
                // Read before claiming: a failed read must not use up the week's claim.
                let Some(from) =
                    covered_from(state, &tenant.id, slot - Duration::days(7), slot).await?
                else {
                    // Nothing seen yet (a bot started moments ago): the week
                    // is claimed, so it is not looked at again, and nothing posts.
                    if state.store.claim_review(&tenant.id, &period, now).await? {
                        tracing::info!(tenant = %tenant.id, "no history for the weekly review yet; nothing posted");
                    }
                    continue;
                };
                let input = load(state, &tenant.id, from, slot).await?;
                if input.is_empty() {
                    if state.store.claim_review(&tenant.id, &period, now).await? {
                        tracing::info!(tenant = %tenant.id, "an empty week: no weekly review posted");
                    }
                    continue;
                }
                let r = compute(&input, from, slot);
                let v = view(&tenant.id, &r, 7);
                let mut payload = state.templates.render("review", &v)?;
                payload["channel"] = tenant.channel.as_str().into();
                let key = format!("review:{}:{period}", tenant.id);
                let mut msgs = vec![crate::store::NewOutboxMessage {
                    ordering_key: Some(key.clone()),
                    ..crate::store::NewOutboxMessage::call(
                        "chat.postMessage",
                        payload,
                        format!("{key}:post"),
                    )
                }];
                if cfg.charts {
                    let mut m = crate::slack::charts::chart_upload_message(
                        &Chart::Review(charts(&tenant.id, &r)),
                        "sla-review.png",
                        &format!("SLA review charts · {}", tenant.id),
                        "ETA error at 25, 50 and 75% progress for Servo and the bot; at-risk episodes by weekday and by hour",
                        None,
                    );
                    m.payload["channel"] = tenant.channel.as_str().into();
                    m.dedup_key = Some(format!("{key}:charts"));
                    m.ordering_key = Some(key.clone());
                    msgs.push(m);
                }
                // Written before the week is claimed: a bot that stops in
                // between writes it again at the next poll, and its outbox keys
                // send it once. (Claimed first, a crash lost the week's review.)
                state.enqueue_many(&msgs).await?;
                if !state.store.claim_review(&tenant.id, &period, now).await? {
                    continue;
                }
                state.metrics.inc("servo_sla_bot_reviews_total", &[]);
                posted += 1;
            }
        }
    }
    // Pruning scans whole tables: once an hour is plenty.
    let last = state
        .last_prune_ms
        .load(std::sync::atomic::Ordering::Relaxed);
    if now.timestamp_millis() - last >= PRUNE_EVERY.num_milliseconds() {
        let before = now - Duration::from_std(cfg.retention).unwrap_or(Duration::days(90));
        let mut pruned = state.store.prune_history(before).await?;
        // By their own rules: an event is redelivered within the hour, and
        // the quick-rise check reads `escalation.rise_within` back.
        pruned += state
            .store
            .prune_processed(now - PROCESSED_EVENTS_KEPT)
            .await?;
        let rise = Duration::from_std(state.config.escalation.rise_within).unwrap_or_default();
        pruned += state
            .store
            .prune_severity_history(now - rise.max(SEVERITY_HISTORY_KEPT))
            .await?;
        state
            .last_prune_ms
            .store(now.timestamp_millis(), std::sync::atomic::Ordering::Relaxed);
        if pruned > 0 {
            tracing::info!(rows = pruned, "pruned history past review.retention");
        }
    }
    Ok(posted)
}

/// How often history past the retention is pruned.
const PRUNE_EVERY: Duration = Duration::hours(1);
/// Handled Slack events and clicks are remembered this long (Slack
/// redelivers an unanswered event within minutes, never after an hour).
const PROCESSED_EVENTS_KEPT: Duration = Duration::days(1);
/// Severities are kept at least this long for the quick-rise check.
const SEVERITY_HISTORY_KEPT: Duration = Duration::days(1);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_sections_are_split_at_line_ends_under_slacks_limit() {
        let line = "x".repeat(1000);
        let text = vec![line.clone(); 7].join("\n");
        let parts = chunk(&text, 2900);
        assert_eq!(
            parts.len(),
            4,
            "two lines of 1000 fit in 2900, three do not"
        );
        assert!(parts.iter().all(|p| p.chars().count() <= 2900));
        assert_eq!(parts.join("\n"), text, "nothing lost");
        let one = "y".repeat(6000);
        let parts = chunk(&one, 2900);
        assert_eq!(parts.concat(), one);
        assert!(parts.iter().all(|p| p.chars().count() <= 2900));
        assert_eq!(chunk("short", 2900), vec!["short".to_string()]);
    }

    #[test]
    fn the_weekly_slot_is_the_last_configured_day_and_time() {
        let cfg = crate::config::ReviewConfig::default(); // Monday 09:00
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        assert_eq!(
            last_slot(&cfg, at("2026-11-30T09:00:00Z")),
            at("2026-11-30T09:00:00Z")
        );
        assert_eq!(
            last_slot(&cfg, at("2026-11-30T08:59:59Z")),
            at("2026-11-23T09:00:00Z")
        );
        assert_eq!(
            last_slot(&cfg, at("2026-11-29T23:00:00Z")),
            at("2026-11-23T09:00:00Z")
        );
        assert_eq!(
            last_slot(&cfg, at("2026-12-03T12:00:00Z")),
            at("2026-11-30T09:00:00Z")
        );
    }

    #[test]
    fn an_empty_period_reviews_cleanly() {
        let from = DateTime::parse_from_rfc3339("2026-11-23T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let r = compute(&ReviewInput::default(), from, from + Duration::days(7));
        assert_eq!(r.breached_total, 0);
        assert!(r
            .accuracy
            .iter()
            .all(|m| m.jobs == 0 && m.servo_abs.is_none()));
        let v = view("acme", &r, 7);
        let all = v.sections.join("\n");
        assert!(all.contains("No deadline was missed."));
        assert!(all.contains("Nobody was paged."));
        assert!(all.contains("None taken."));
        assert_eq!(v.title, "SLA review · acme · last 7 days");
        assert!(v.period.starts_with(&date_token(from)), "{}", v.period);
    }

    #[test]
    fn a_period_shorter_than_asked_says_when_the_bot_started_watching() {
        let to = DateTime::parse_from_rfc3339("2026-11-30T09:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let from = to - Duration::days(2);
        let r = compute(&ReviewInput::default(), from, to);
        let v = view("acme", &r, 7);
        assert!(
            v.title.contains("since the bot started watching (2 d)"),
            "{}",
            v.title
        );
        assert!(
            v.text.contains("since the bot started watching"),
            "{}",
            v.text
        );
        assert!(
            v.period.starts_with(&format!(
                "since {} when the bot started watching, to {}",
                date_token(from),
                date_token(to)
            )),
            "{}",
            v.period
        );
    }

    /// Issue 33, item 14: one of a thing reads singular, two plural, and
    /// nothing reads "(s)".
    #[test]
    fn the_review_counts_one_job_and_two_jobs_in_words() {
        let from = DateTime::parse_from_rfc3339("2026-11-23T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut r = compute(&ReviewInput::default(), from, from + Duration::days(7));
        let with = |r: &mut Review, n: usize| {
            (r.jobs_watched, r.episodes, r.breached_total) = (n, n, n);
            (r.approaching, r.tight, r.promoted) = (n, n, n);
            r.pages = vec![TierPages {
                tier: "On-call Engineer".into(),
                pages: n,
                acked: 0,
                moved_on: 0,
                median_ack: None,
            }];
            r.by_asset = vec![AssetLine {
                asset: "orders".into(),
                episodes: n,
                breaches: n,
            }];
            for m in &mut r.accuracy {
                m.jobs = n;
            }
            let v = view("acme", r, 7);
            format!("{}\n{}", v.text, v.sections.join("\n"))
        };
        let one = with(&mut r, 1);
        for want in [
            "1 breach, 1 at-risk episode",
            "1 job with a deadline watched, 1 at-risk episode, 1 breach.",
            "1 approaching notice, 1 tight deadline flagged at first sight, 1 went on to become an alert.",
            "at 25% done (1 job)",
            "On-call Engineer: 1 page, 0 acknowledged",
            "orders (1 episode, 1 breach)",
        ] {
            assert!(one.contains(want), "missing {want:?} in {one}");
        }
        let two = with(&mut r, 2);
        for want in [
            "2 breaches, 2 at-risk episodes",
            "2 jobs with a deadline watched, 2 at-risk episodes, 2 breaches.",
            "2 approaching notices, 2 tight deadlines flagged at first sight, 2 went on to become alerts.",
            "at 25% done (2 jobs)",
            "On-call Engineer: 2 pages, 0 acknowledged",
            "orders (2 episodes, 2 breaches)",
        ] {
            assert!(two.contains(want), "missing {want:?} in {two}");
        }
        for text in [&one, &two] {
            assert!(!text.contains("(s)") && !text.contains("(es)"), "{text}");
        }
    }

    #[test]
    fn mitigations_before_a_recreate_count_for_the_episode_it_mitigated() {
        let at = |h: i64| {
            DateTime::parse_from_rfc3339("2026-11-30T00:00:00Z")
                .unwrap()
                .with_timezone(&Utc)
                + Duration::hours(h)
        };
        let (from, to) = (at(0), at(24 * 7));
        let entry = |h: i64, action: &str, job: &str, detail: serde_json::Value| AuditEntry {
            at: at(h),
            tenant_id: Some("acme".into()),
            actor: "U1".into(),
            action: action.into(),
            subject: Some(job.into()),
            outcome: "ok".into(),
            detail: Some(detail),
        };
        // The alert followed j1, then j2, then j3 (two recreates); it was
        // answered *Mitigated* on j3. j9's pause belongs to another alert.
        let input = ReviewInput {
            audit: vec![
                entry(
                    1,
                    "pause",
                    "j1",
                    serde_json::json!({ "job": "x1", "for_alert": "a1" }),
                ),
                entry(2, "request_scaling", "j1", serde_json::json!({})),
                entry(3, "recreate", "j1", serde_json::json!({ "new_job": "j2" })),
                entry(4, "recreate", "j2", serde_json::json!({ "new_job": "j3" })),
                entry(
                    5,
                    "pause",
                    "j9",
                    serde_json::json!({ "job": "x2", "for_alert": "a9" }),
                ),
                // After the answer: not what preceded it.
                entry(11, "request_scaling", "j3", serde_json::json!({})),
            ],
            dispositions: vec![crate::store::Disposition {
                alert_id: "a1".into(),
                tenant_id: "acme".into(),
                job_id: "j3".into(),
                asset: "orders".into(),
                disposition: "mitigated".into(),
                note: None,
                answered_by: "U1".into(),
                answered_at: at(10),
            }],
            ..ReviewInput::default()
        };
        let r = compute(&input, from, to);
        assert_eq!(
            r.endings.before_mitigated,
            vec![
                ("Recreate with priority 10".to_string(), 2),
                ("Pause lower-priority jobs".to_string(), 1),
                ("Request scaling".to_string(), 1),
            ]
        );
    }

    #[test]
    fn the_review_counts_how_episodes_ended_and_leaves_expected_out_of_close_calls() {
        let at = |h: i64| {
            DateTime::parse_from_rfc3339("2026-11-30T00:00:00Z")
                .unwrap()
                .with_timezone(&Utc)
                + Duration::hours(h)
        };
        let (from, to) = (at(0), at(24 * 7));
        let watched = |job: &str, asset: &str, buffer: f64| WatchedJob {
            tenant_id: "acme".into(),
            job_id: job.into(),
            asset: asset.into(),
            priority: 5,
            tier: "standard".into(),
            first_seen: at(1),
            deadline: Some(at(10)),
            planned_buffer: Some(0.3),
            min_buffer: Some(buffer),
            min_buffer_at: Some(at(5)),
            last_mark: 100,
            breached_at: None,
            ended_at: Some(at(9)),
            outcome: Some("completed".into()),
            completed_at: Some(at(9)),
        };
        let ended = |job: &str, asset: &str, how: &str| crate::store::Disposition {
            alert_id: format!("alert-{job}"),
            tenant_id: "acme".into(),
            job_id: job.into(),
            asset: asset.into(),
            disposition: how.into(),
            note: None,
            answered_by: "U1".into(),
            answered_at: at(10),
        };
        let recreate = |job: &str| AuditEntry {
            at: at(4),
            tenant_id: Some("acme".into()),
            actor: "U1".into(),
            action: "recreate".into(),
            subject: Some(job.into()),
            outcome: "ok".into(),
            detail: None,
        };
        let input = ReviewInput {
            watched: vec![
                watched("j1", "orders", 0.01),
                watched("j2", "orders", 0.02),
                watched("j3", "revenue", 0.03),
                watched("j4", "costs", 0.04),
            ],
            audit: vec![recreate("j3")],
            dispositions: vec![
                ended("j1", "orders", "false_alarm"),
                ended("j2", "orders", "false_alarm"),
                ended("j3", "revenue", "mitigated"),
                ended("j4", "costs", "expected"),
            ],
            ..ReviewInput::default()
        };
        let r = compute(&input, from, to);
        assert_eq!(r.endings.false_alarm, 2);
        assert_eq!(r.endings.mitigated, 1);
        assert_eq!(r.endings.expected, 1);
        assert_eq!(
            r.endings.false_alarms_by_asset,
            vec![("orders".to_string(), 2)]
        );
        assert_eq!(
            r.endings.before_mitigated,
            vec![("Recreate with priority 10".to_string(), 1)]
        );
        let close: Vec<&str> = r.close_calls.iter().map(|j| j.job_id.as_str()).collect();
        assert_eq!(
            close,
            ["j1", "j2", "j3"],
            "the Expected one is no close call"
        );
        let text = view("acme", &r, 7).sections.join("\n");
        assert!(
            text.contains("1 mitigated, 1 expected, 2 false alarms, 0 missed"),
            "{text}"
        );
        assert!(text.contains("False alarms by asset: orders ×2"), "{text}");
        assert!(
            text.contains("Before a _Mitigated_: Recreate with priority 10 ×1"),
            "{text}"
        );
    }
}
