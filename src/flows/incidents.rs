//! Trouble wider than one job (issue 22), as the runbook names it:
//! - **widespread slowdowns**: `escalation.widespread.min_jobs` jobs of a
//!   tenant (or, when set, `escalation.widespread.share` of its active
//!   jobs) at risk at the same time with the same bottleneck: waiting on
//!   upstream jobs, partition durations rising, partitions failing. It pages
//!   from the platform team lead's tier (tier 2), once per episode, with one
//!   page that names the shared cause and the jobs;
//! - **system-wide degradation**: partition durations rising on most of the
//!   active jobs that have a history to judge by, across all tenants
//!   (`escalation.system_wide`). It pages the platform tier once per episode
//!   and says so in every affected tenant's channel;
//! - **several high-priority jobs at risk at once** (the runbook's first
//!   reason to escalate): `escalation.high_priority_jobs` jobs of priority
//!   `escalation.high_priority_min` or more, across tenants as well as within
//!   one. It pages the platform tier once per episode: one page per person
//!   and tenant, naming that tenant's jobs and counting the others'.
//!
//! Each episode is an incident row: opened with its pages and notes in one
//! transaction (one open per scope and kind, whichever replica polls, and
//! however many polls judge at once), and closed when the condition clears.

use crate::config::{EscalationTier, Tenant};
use crate::context::AppState;
use crate::domain::assessment::{Assessment, Bottleneck};
use crate::domain::text::escape_slack;
use crate::servo::Job;
use crate::store::{Alert, AuditEntry, Effects, NewOutboxMessage};
use chrono::{DateTime, Utc};
use serde_json::json;
use std::collections::HashSet;

/// The shared causes a widespread slowdown is judged on: its incident kind,
/// and how a note says it.
const CAUSES: [(&str, &str); 3] = [
    ("widespread:waiting_upstream", "waiting on upstream jobs"),
    (
        "widespread:durations_rising",
        "slowing down: partition durations rising",
    ),
    ("widespread:partitions_failing", "failing partitions"),
];

fn has_cause(kind: &str, b: &Bottleneck) -> bool {
    matches!(
        (kind, b),
        (
            "widespread:waiting_upstream",
            Bottleneck::WaitingUpstream { .. }
        ) | (
            "widespread:durations_rising",
            Bottleneck::DurationsRising { .. }
        ) | (
            "widespread:partitions_failing",
            Bottleneck::FailedPartitions { .. }
        )
    )
}

/// The tier a wide incident pages: the platform team lead's (tier 2), or the
/// last there is, of the tenant's path (`""`: the global path, for what
/// spans tenants), with the people on call now.
async fn platform_tier(state: &AppState, tenant: &str) -> Option<EscalationTier> {
    let tiers = &state.config.escalation_for(tenant).tiers;
    let tier = tiers.get(1).or_else(|| tiers.last())?;
    Some(crate::flows::oncall::resolve_tier(state, tier, state.clock.now()).await)
}

/// The platform tier each of `tenants` pages for what spans tenants: the
/// global path's for all; when every tenant has its own path and the global
/// one is left out, each tenant's own (`None` where a path has no tier).
async fn platform_tiers(state: &AppState, tenants: &[&str]) -> Vec<Option<EscalationTier>> {
    let global = platform_tier(state, "").await;
    let mut out = Vec::new();
    for tenant in tenants {
        out.push(match &global {
            Some(tier) => Some(tier.clone()),
            None => platform_tier(state, tenant).await,
        });
    }
    out
}

/// Several tenants' platform tiers as one (their people together, each once;
/// the first one's timeout and PagerDuty key), for a page that names no
/// tenant's jobs.
fn merged(tiers: impl IntoIterator<Item = EscalationTier>) -> Option<EscalationTier> {
    let mut merged: Option<EscalationTier> = None;
    for tier in tiers {
        match merged.as_mut() {
            None => merged = Some(tier),
            Some(m) => {
                for p in tier.notify {
                    if !m.notify.contains(&p) {
                        m.notify.push(p);
                    }
                }
                if !m.name.split(" / ").any(|n| n == tier.name) {
                    m.name = format!("{} / {}", m.name, tier.name);
                }
            }
        }
    }
    merged
}

/// The tiers' PagerDuty routing keys, each once, in order.
fn routing_keys(tiers: &[EscalationTier]) -> Vec<&String> {
    let mut keys: Vec<&String> = Vec::new();
    for env in tiers
        .iter()
        .filter_map(|t| t.pagerduty_routing_key_env.as_ref())
    {
        if !keys.contains(&env) {
            keys.push(env);
        }
    }
    keys
}

/// The outbox key of an incident's PagerDuty event `base` on the `i`th
/// routing key (the first keeps the key it always had).
fn pd_event_key(base: &str, i: usize, env: &str) -> String {
    if i == 0 {
        base.to_string()
    } else {
        format!("{base}:{env}")
    }
}

/// One line per job, capped for a page.
fn job_list(jobs: &[(&Job, &Assessment)]) -> String {
    let lines: Vec<String> = jobs
        .iter()
        .map(|(j, a)| {
            let why = a
                .bottlenecks
                .iter()
                .find(|b| matches!(b, Bottleneck::WaitingUpstream { .. }))
                .map(|_| {
                    format!(
                        ", waiting on {} of {} upstream jobs",
                        j.upstream_job_count - j.completed_upstream_jobs,
                        j.upstream_job_count
                    )
                })
                .unwrap_or_default();
            format!(
                "{} ({} {}{why})",
                escape_slack(&j.asset_name),
                a.band.emoji(),
                a.band.label()
            )
        })
        .collect();
    crate::slack::limits::join_capped(&lines, "; ", 1_500, |n| {
        format!("…and {n} more (`/backfill list at-risk`)")
    })
}

/// The pages of an incident: a DM to each person of the tier.
async fn pages(
    state: &AppState,
    tier: &EscalationTier,
    id: &str,
    text: &str,
) -> Vec<NewOutboxMessage> {
    let people = match state.directory.expand(&tier.notify).await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "could not expand the tier's user groups; paging its people named directly");
            tier.notify
                .iter()
                .filter_map(|p| match p {
                    crate::domain::ids::Principal::User(u) => Some(u.clone()),
                    _ => None,
                })
                .collect()
        }
    };
    people
        .into_iter()
        .map(|user| {
            NewOutboxMessage::call(
                "chat.postMessage",
                json!({ "channel": user, "text": text }),
                format!("incident:{id}:page:{user}"),
            )
        })
        .collect()
}

/// The people an incident wider than one job paged for `alert`: the DMs of
/// each incident opened while the alert was open (open or closed since)
/// that names its job, a widespread slowdown of its tenant (its `jobs`) or
/// several high-priority jobs at once (its `job_ids`, with the pages of
/// the alert's tenant). System-wide degradation names tenants, not jobs, so
/// whether it covered the alert cannot be told: its pages do not count.
pub async fn paged_for(state: &AppState, alert: &Alert) -> anyhow::Result<HashSet<String>> {
    let mut out = HashSet::new();
    for scope in [alert.tenant_id.as_str(), "*"] {
        let opened = state
            .store
            .incidents_opened_between(scope, alert.opened_at, alert.resolved_at)
            .await?;
        for (incident, detail) in opened {
            // Where the incident lists its jobs, and its DMs' keys (`pages`).
            let (listed, prefix) = if incident.kind.starts_with("widespread:") {
                ("jobs", format!("incident:{}:page:", incident.id))
            } else if incident.kind == HIGH_PRIORITY {
                (
                    "job_ids",
                    format!("incident:{}:{}:page:", incident.id, alert.tenant_id),
                )
            } else {
                continue;
            };
            let names_job = detail
                .as_ref()
                .and_then(|d| d.get(listed))
                .and_then(serde_json::Value::as_array)
                .is_some_and(|jobs| jobs.iter().any(|j| j.as_str() == Some(&alert.job_id)));
            if !names_job {
                continue;
            }
            for key in state.store.outbox_keys_with_prefix(&prefix).await? {
                if let Some(user) = key.strip_prefix(&prefix).filter(|u| !u.is_empty()) {
                    out.insert(user.to_string());
                }
            }
        }
    }
    Ok(out)
}

/// A note in the tenant's channel: in the storm's roll-up thread when there
/// is one, else a message of its own.
fn note(tenant: &Tenant, rollup: Option<&str>, key: String, text: &str) -> NewOutboxMessage {
    let mut m = NewOutboxMessage::call(
        "chat.postMessage",
        json!({ "channel": tenant.channel.as_str(), "text": text }),
        key,
    );
    if let Some(r) = rollup {
        m.thread_alert_id = Some(format!("rollup:{r}"));
        m.thread_field = Some("thread_ts".into());
        m.ordering_key = Some(format!("rollup:{r}"));
    }
    m
}

fn audit(scope: &str, action: &str, detail: serde_json::Value, now: DateTime<Utc>) -> AuditEntry {
    AuditEntry {
        at: now,
        tenant_id: (scope != "*").then(|| scope.to_string()),
        actor: "bot".into(),
        action: action.into(),
        subject: None,
        outcome: "ok".into(),
        detail: Some(detail),
    }
}

/// After a tenant's poll: opens (and pages for) or closes its widespread
/// slowdowns. Returns how many it opened.
pub async fn widespread(
    state: &AppState,
    tenant: &Tenant,
    judged: &[(&Job, Assessment)],
    rollup: Option<&str>,
    now: DateTime<Utc>,
) -> anyhow::Result<usize> {
    let cfg = &state.config.escalation.widespread;
    let open = state.store.open_incidents(&tenant.id).await?;
    // A job a silence, a maintenance window or paging hours hold does not
    // page, not even as one of many: read when an incident would open.
    let mut held: Option<crate::flows::quiet::Holds> = None;
    let may_page = |held: &crate::flows::quiet::Holds, job: &Job, a: &Assessment| {
        let subject = crate::flows::quiet::Subject {
            tenant: tenant.id.clone(),
            job_id: job.id.to_string(),
            asset: job.asset_name.clone(),
            band: a.band,
            tier: a.tier,
        };
        crate::flows::quiet::decide_among(state, &subject, now, held)
            == crate::flows::quiet::Decision::Page
    };
    let mut opened = 0;
    for (kind, words) in CAUSES {
        let mut jobs: Vec<(&Job, &Assessment)> = judged
            .iter()
            .filter(|(_, a)| a.band.is_at_risk())
            .filter(|(_, a)| a.bottlenecks.iter().any(|b| has_cause(kind, b)))
            .map(|(j, a)| (*j, a))
            .collect();
        jobs.sort_by(|x, y| Assessment::riskiest_first(x.1, y.1));
        let widespread = |n: usize| {
            n >= cfg.min_jobs
                || cfg
                    .share
                    .is_some_and(|s| n >= 2 && n as f64 >= s * judged.len() as f64)
        };
        let on = widespread(jobs.len());
        let current = open.iter().find(|i| i.kind == kind);
        // It opens (and pages) on the jobs that may page; an open one
        // stays open while the slowdown lasts, held or not.
        if on && current.is_none() {
            if held.is_none() {
                held = Some(crate::flows::quiet::Holds::read(state, &tenant.id, now).await?);
            }
            let held = held.as_ref().expect("read above");
            jobs.retain(|(j, a)| may_page(held, j, a));
        }
        match (on && widespread(jobs.len()), current) {
            (true, None) => {
                let Some(tier) = platform_tier(state, &tenant.id).await else {
                    continue;
                };
                let tier = &tier;
                let id = uuid::Uuid::new_v4().to_string();
                let list = job_list(&jobs);
                let what = format!(
                    "widespread slowdown in tenant {}: {} jobs at risk are all {words}: {list}",
                    escape_slack(&tenant.id),
                    jobs.len()
                );
                let mut effects = Effects::new();
                // One page per person: those the storm's roll-up already
                // paged for these jobs are not paged again (issue 35).
                let paged = match rollup {
                    Some(r) => crate::flows::group_paging::paged_people(state, r).await?,
                    None => Default::default(),
                };
                for p in pages(
                    state,
                    tier,
                    &id,
                    &format!(
                        ":rotating_light: You are paged ({}): {what}. One page for all of them; their alerts are in <#{}>.",
                        escape_slack(&tier.name),
                        tenant.channel.as_str()
                    ),
                )
                .await
                {
                    let to = p.payload["channel"].as_str().unwrap_or_default();
                    if !paged.contains(to) {
                        effects.send(p);
                    }
                }
                effects.send(note(
                    tenant,
                    rollup,
                    format!("incident:{id}:note"),
                    &format!(
                        ":rotating_light: *Widespread slowdown*: {} jobs at risk are all {words}: {list}. Paging {} ({}) once for all of them.",
                        jobs.len(),
                        escape_slack(&tier.name),
                        state.directory.names(&tier.notify).await
                    ),
                ));
                let detail = json!({
                    "cause": kind,
                    "jobs": jobs.iter().map(|(j, _)| j.id.to_string()).collect::<Vec<_>>(),
                });
                effects.record(audit(&tenant.id, "widespread_page", detail.clone(), now));
                if state
                    .store
                    .open_incident_with(&id, &tenant.id, kind, &detail, &effects, now)
                    .await?
                {
                    state.wake_outbox();
                    state
                        .metrics
                        .inc("servo_sla_bot_incidents_total", &[("kind", kind)]);
                    tracing::warn!(tenant = %tenant.id, cause = kind, jobs = jobs.len(), "widespread slowdown: paging the platform tier");
                    opened += 1;
                }
            }
            (false, Some(incident)) => {
                let mut effects = Effects::new();
                effects.send(note(
                    tenant,
                    rollup,
                    format!("incident:{}:cleared", incident.id),
                    &format!(
                        ":large_green_circle: The widespread slowdown has cleared: fewer than {} jobs at risk are {words} now.",
                        cfg.min_jobs
                    ),
                ));
                if state
                    .store
                    .close_incident_with(&incident.id, &effects, now)
                    .await?
                {
                    state.wake_outbox();
                }
            }
            _ => {}
        }
    }
    Ok(opened)
}

/// After every tenant's poll: opens (and pages for) or closes system-wide
/// degradation, judged across tenants from what each tenant's poll judged.
/// Returns whether it opened one.
pub async fn system_wide(
    state: &AppState,
    fleet: &[(&Tenant, Judged)],
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let cfg = &state.config.escalation.system_wide;
    // The jobs with a partition history to judge by, and those of them
    // whose partitions take longer and longer.
    let judged: usize = fleet.iter().map(|(_, j)| j.with_history).sum();
    let rising: Vec<(&Tenant, &[String])> = fleet
        .iter()
        .filter(|(_, j)| !j.rising.is_empty())
        .map(|(t, j)| (*t, j.rising.as_slice()))
        .collect();
    let n: usize = rising.iter().map(|(_, r)| r.len()).sum();
    let on = n >= cfg.min_jobs && judged > 0 && n as f64 >= cfg.share * judged as f64;
    let current = state.store.open_incidents("*").await?;
    let current = current.iter().find(|i| i.kind == "system");
    match (on, current) {
        (true, None) => {
            let affected: Vec<&str> = rising.iter().map(|(t, _)| t.id.as_str()).collect();
            let tiers = platform_tiers(state, &affected).await;
            let Some(tier) = merged(tiers.into_iter().flatten()) else {
                tracing::error!(
                    "system-wide degradation, but no escalation path has a tier to page"
                );
                return Ok(false);
            };
            let tier = &tier;
            let id = uuid::Uuid::new_v4().to_string();
            let tenants: Vec<String> = rising
                .iter()
                .map(|(t, r)| {
                    format!(
                        "{} ({})",
                        escape_slack(&t.id),
                        crate::domain::text::count(r.len(), "job", "jobs")
                    )
                })
                .collect();
            let mut effects = Effects::new();
            for p in pages(
                state,
                tier,
                &id,
                &format!(
                    ":rotating_light: You are paged ({}): *system-wide degradation*: partition durations are rising on {n} of the {judged} active jobs with a history, across {}: {}. Likely the platform, not one job.",
                    escape_slack(&tier.name),
                    if rising.len() == 1 { "1 tenant".to_string() } else { format!("{} tenants", rising.len()) },
                    tenants.join(", ")
                ),
            )
            .await
            {
                effects.send(p);
            }
            // Each affected tenant's channel hears of it, with only its own jobs.
            for (t, r) in &rising {
                let rollup = state.store.open_rollup(&t.id).await?.map(|r| r.id);
                let names: Vec<String> = r.iter().map(|asset| escape_slack(asset)).collect();
                let names = crate::slack::limits::join_capped(&names, ", ", 1_000, |k| {
                    format!("…and {k} more")
                });
                effects.send(note(
                    t,
                    rollup.as_deref(),
                    format!("incident:{id}:note:{}", t.id),
                    &format!(
                        ":rotating_light: *System-wide degradation*: partition durations are rising on most jobs across the platform, {} of them here ({names}). The platform tier ({}) is paged once for all tenants.",
                        r.len(),
                        escape_slack(&tier.name)
                    ),
                ));
            }
            let detail = json!({
                "rising": n,
                "judged": judged,
                "tenants": rising.iter().map(|(t, _)| t.id.clone()).collect::<Vec<_>>(),
            });
            effects.record(audit("*", "system_wide_page", detail.clone(), now));
            let opened = state
                .store
                .open_incident_with(&id, "*", "system", &detail, &effects, now)
                .await?;
            if opened {
                state.wake_outbox();
                state
                    .metrics
                    .inc("servo_sla_bot_incidents_total", &[("kind", "system")]);
                tracing::warn!(
                    rising = n,
                    judged,
                    "system-wide degradation: paging the platform tier"
                );
            }
            Ok(opened)
        }
        (false, Some(incident)) => {
            if state
                .store
                .close_incident_with(&incident.id, &Effects::new(), now)
                .await?
            {
                tracing::info!("system-wide degradation cleared");
            }
            Ok(false)
        }
        _ => Ok(false),
    }
}

/// The incident kind of several high-priority jobs at risk at once (scope
/// `*`: judged across tenants).
const HIGH_PRIORITY: &str = "high_priority";

/// After every tenant's poll: opens (and pages for) or closes the episode of
/// several high-priority jobs at risk at once, from each tenant's open
/// alerts with their jobs. Each job counts once, and only in its own tenant;
/// `every_tenant` says whether every tenant's poll succeeded: a tenant left
/// out is not known to be fine, so only then can the episode end. Returns
/// whether it opened one.
pub async fn high_priority(
    state: &AppState,
    fleet: &[(&Tenant, &[(Alert, Job)])],
    every_tenant: bool,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let cfg = &state.config.escalation;
    let mut counted = std::collections::HashSet::new();
    let mut highs: Vec<(&Tenant, Vec<&Job>)> = Vec::new();
    for (tenant, at_risk) in fleet {
        let mut high = Vec::new();
        for (alert, job) in at_risk.iter() {
            if job.priority < cfg.high_priority_min {
                continue;
            }
            // A job read under another tenant (Servo's RLS not applying)
            // is not this tenant's: never counted, never named here.
            if job.tenant_id != tenant.id || alert.tenant_id != tenant.id {
                tracing::error!(tenant = %tenant.id, job = %job.id, job_tenant = %job.tenant_id,
                    "a job of another tenant came with this tenant's poll; left out of the high-priority count");
                continue;
            }
            if counted.insert(job.id) {
                high.push(job);
            }
        }
        if !high.is_empty() {
            high.sort_by(|a, b| {
                b.priority
                    .cmp(&a.priority)
                    .then(a.asset_name.cmp(&b.asset_name))
            });
            highs.push((*tenant, high));
        }
    }
    let total: usize = highs.iter().map(|(_, h)| h.len()).sum();
    let on = total >= cfg.high_priority_jobs as usize;
    let open = state.store.open_incidents("*").await?;
    let current = open.iter().find(|i| i.kind == HIGH_PRIORITY);
    match (on, current) {
        (true, None) => {
            // The global platform tier for every tenant's share; without a
            // global path, each tenant's own platform tier for its share
            // (so nobody is told of another team's jobs).
            let affected: Vec<&str> = highs.iter().map(|(t, _)| t.id.as_str()).collect();
            let Some(tiers) = platform_tiers(state, &affected)
                .await
                .into_iter()
                .collect::<Option<Vec<_>>>()
            else {
                tracing::error!(
                    "several high-priority jobs at risk, but a tenant's path has no tier to page"
                );
                return Ok(false);
            };
            open_high_priority(state, &tiers, &highs, total, now).await
        }
        (false, Some(incident)) if every_tenant => {
            // The PagerDuty incident the episode opened: on the global
            // platform tier's key, or (every tenant on its own path) on the
            // first affected tenant's, which is not known now: each tenant's
            // platform key is told to resolve it (an unknown key is a no-op).
            let every: Vec<&str> = state.config.tenants.iter().map(|t| t.id.as_str()).collect();
            let tiers: Vec<EscalationTier> = platform_tiers(state, &every)
                .await
                .into_iter()
                .flatten()
                .collect();
            let mut effects = Effects::new();
            for (i, env) in routing_keys(&tiers).into_iter().enumerate() {
                effects.send(NewOutboxMessage::call(
                    crate::pagerduty::OUTBOX_METHOD,
                    json!({
                        "routing_key_env": env,
                        "event_action": "resolve",
                        "dedup_key": format!("servo-sla-bot-incident-{}", incident.id),
                    }),
                    pd_event_key(&format!("incident:{}:pd:resolve", incident.id), i, env),
                ));
            }
            if state
                .store
                .close_incident_with(&incident.id, &effects, now)
                .await?
            {
                state.wake_outbox();
                tracing::info!(
                    high = total,
                    "several high-priority jobs at risk: the episode has cleared"
                );
            }
            Ok(false)
        }
        _ => Ok(false),
    }
}

/// A tenant's share of the episode, as its page and its channel say it:
/// its own jobs named, the others' only counted.
fn high_priority_what(tenant: &Tenant, high: &[&Job], total: usize, tenants: usize) -> String {
    let listed: Vec<String> = high
        .iter()
        .map(|j| {
            format!(
                "{} (`{}`, p{})",
                escape_slack(&j.asset_name),
                j.id,
                j.priority
            )
        })
        .collect();
    // Capped: a DM's text and a note stay well within Slack's limits; the
    // rest are one `/backfill list at-risk` away.
    let listed = crate::slack::limits::join_capped(&listed, ", ", 1_200, |n| {
        format!("…and {n} more (`/backfill list at-risk`)")
    });
    let elsewhere = total - high.len();
    if elsewhere == 0 {
        format!(
            "{} high-priority jobs of tenant {} are at risk at once: {listed}",
            high.len(),
            escape_slack(&tenant.id)
        )
    } else {
        format!(
            "{total} high-priority jobs are at risk at once across tenants; in {}: {listed} (and {elsewhere} more in {} other tenant{})",
            escape_slack(&tenant.id),
            tenants - 1,
            if tenants == 2 { "" } else { "s" }
        )
    }
}

/// Opens the episode with its pages: per tenant, one DM to each person of
/// the platform tier and a note in the tenant's channel (or its roll-up
/// thread); one PagerDuty trigger when the tier has a routing key, naming
/// only how many jobs each tenant has. All in one transaction, which does
/// nothing when the episode is already open.
async fn open_high_priority(
    state: &AppState,
    tiers: &[EscalationTier],
    highs: &[(&Tenant, Vec<&Job>)],
    total: usize,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let id = uuid::Uuid::new_v4().to_string();
    let mut effects = Effects::new();
    for ((tenant, high), tier) in highs.iter().zip(tiers) {
        let names = state.directory.names(&tier.notify).await;
        let what = high_priority_what(tenant, high, total, highs.len());
        for p in pages(
            state,
            tier,
            &format!("{id}:{}", tenant.id),
            &format!(
                ":rotating_light: You are paged ({}): {what}. One page for all of them; their alerts are in <#{}>.",
                escape_slack(&tier.name),
                tenant.channel.as_str()
            ),
        )
        .await
        {
            effects.send(p);
        }
        let rollup = state.store.open_rollup(&tenant.id).await?.map(|r| r.id);
        effects.send(note(
            tenant,
            rollup.as_deref(),
            format!("incident:{id}:note:{}", tenant.id),
            &format!(
                ":rotating_light: *Several high-priority jobs at risk at once*: {what}. Paging {} ({names}) once for all of them.",
                escape_slack(&tier.name)
            ),
        ));
    }
    let counts: serde_json::Map<String, serde_json::Value> = highs
        .iter()
        .map(|(t, h)| (t.id.clone(), json!(h.len())))
        .collect();
    let mut tier_names: Vec<&str> = Vec::new();
    for t in tiers {
        if !tier_names.contains(&t.name.as_str()) {
            tier_names.push(&t.name);
        }
    }
    for (i, env) in routing_keys(tiers).into_iter().enumerate() {
        let by_tenant: Vec<String> = highs
            .iter()
            .map(|(t, h)| format!("{} {}", t.id, h.len()))
            .collect();
        let summary: String = format!(
            "{total} high-priority backfill jobs at risk at once ({})",
            by_tenant.join(", ")
        )
        .chars()
        .take(1024)
        .collect();
        effects.send(NewOutboxMessage::call(
            crate::pagerduty::OUTBOX_METHOD,
            json!({
                "routing_key_env": env,
                "event_action": "trigger",
                "dedup_key": format!("servo-sla-bot-incident-{id}"),
                "client": "servo-sla-bot",
                "links": [ { "href": state.config.runbook_url, "text": "Runbook: backfill SLA risk" } ],
                "payload": {
                    "summary": summary,
                    "source": "servo-sla-bot",
                    "severity": "critical",
                    "class": "backfill_sla_high_priority",
                    "custom_details": { "high_priority_jobs": total, "by_tenant": counts, "tier": tier_names.join(" / ") },
                }
            }),
            pd_event_key(&format!("incident:{id}:pd"), i, env),
        ));
    }
    let detail = json!({
        "jobs": total,
        "by_tenant": counts,
        "job_ids": highs.iter().flat_map(|(_, h)| h.iter().map(|j| j.id.to_string())).collect::<Vec<_>>(),
    });
    effects.record(audit("*", "high_priority_page", detail.clone(), now));
    let opened = state
        .store
        .open_incident_with(&id, "*", HIGH_PRIORITY, &detail, &effects, now)
        .await?;
    if opened {
        state.wake_outbox();
        state
            .metrics
            .inc("servo_sla_bot_incidents_total", &[("kind", HIGH_PRIORITY)]);
        tracing::warn!(
            high = total,
            tenants = highs.len(),
            "several high-priority jobs at risk at once: paging the platform tier"
        );
    }
    Ok(opened)
}

/// What a tenant's poll leaves for the judgements made across tenants
/// (system-wide degradation, high-priority jobs at risk together).
pub struct Judged {
    /// How many active jobs had a partition history to judge their pace by.
    pub with_history: usize,
    /// The assets of the jobs whose partition durations are rising.
    pub rising: Vec<String>,
    /// The open alerts after the poll, with their jobs.
    pub at_risk: Vec<(Alert, Job)>,
}
