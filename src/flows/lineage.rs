//! What a late job means downstream, told to the people it concerns (issue
//! 37): when an alert reaches `lineage.notify_owners_at`, the owners of the
//! affected downstream assets get one DM each per episode (what is late,
//! what of theirs it affects, when it is likely done, a link to the alert).
//! An owner that is a Slack user id is messaged as is; an email is resolved
//! with `users.lookupByEmail`; anything else (a team's name, an email Slack
//! does not know) is named in the alert's thread and not messaged. Every
//! message carries a dedup key of the alert (the episode) and the owner, so
//! each goes once however many polls or replicas decide it.

use crate::config::Tenant;
use crate::context::AppState;
use crate::domain::assessment::Assessment;
use crate::domain::lineage::{path_text, Impact, Owner};
use crate::domain::risk::{JobState, RiskBand};
use crate::domain::text::{date_token, escape_slack};
use crate::servo::Job;
use crate::store::{Alert, NewOutboxMessage};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap, HashSet};
use uuid::Uuid;

/// The DMs and the thread note for every open alert at or above
/// `lineage.notify_owners_at` whose job affects downstream assets with
/// owners. Never holds up the poll: a failure is logged.
pub async fn notify_owners(
    state: &AppState,
    tenant: &Tenant,
    judged: &[(&Job, Assessment)],
    open: &HashMap<String, Alert>,
) {
    let Some(from) = state.config.lineage.notify_owners_at else {
        return;
    };
    let mut out = Vec::new();
    for (job, a) in judged {
        let (Some(impact), Some(alert)) = (job.impact.as_ref(), open.get(&job.id.to_string()))
        else {
            continue;
        };
        if !a.band.is_at_risk() || a.band < from {
            continue;
        }
        match messages(state, tenant, job, a, alert, impact).await {
            Ok(m) => out.extend(m),
            Err(e) => {
                tracing::warn!(alert = %alert.id, error = %e, "could not tell the downstream owners")
            }
        }
    }
    if out.is_empty() {
        return;
    }
    if let Err(e) = state.enqueue_many(&out).await {
        tracing::warn!(tenant = %tenant.id, error = %e, "could not enqueue the downstream owners' DMs");
    }
}

/// One alert's messages: a DM per owner who can be messaged, and a thread
/// note naming the others.
async fn messages(
    state: &AppState,
    tenant: &Tenant,
    job: &Job,
    a: &Assessment,
    alert: &Alert,
    impact: &Impact,
) -> Result<Vec<NewOutboxMessage>, crate::flows::thread::AlertError> {
    // Owner (as Servo has it) → the downstream assets of theirs, with paths.
    let mut by_owner: BTreeMap<String, Vec<&crate::domain::lineage::Affected>> = BTreeMap::new();
    for asset in &impact.assets {
        if let Some(o) = asset
            .owner
            .as_deref()
            .map(str::trim)
            .filter(|o| !o.is_empty())
        {
            by_owner.entry(o.to_string()).or_default().push(asset);
        }
    }
    let mut out = Vec::new();
    let mut named: Vec<String> = Vec::new();
    for (owner, assets) in &by_owner {
        let user = match Owner::parse(owner) {
            Owner::SlackUser(id) => Some(id),
            Owner::Email(email) => state.directory.user_by_email(&email).await,
            Owner::Name(_) => None,
        };
        let theirs: Vec<String> = assets.iter().map(|a| path_text(&a.path)).collect();
        match user {
            Some(user) => out.push(dm(tenant, job, a, alert, impact, &user, &theirs)),
            None => named.push(format!(
                "{} ({})",
                escape_slack(owner),
                assets
                    .iter()
                    .map(|a| format!("`{}`", escape_slack(&a.name)))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
    if !named.is_empty() {
        let text = format!(
            ":busts_in_silhouette: Downstream owners not messaged (not a Slack user, or an email Slack does not know): {}",
            crate::slack::limits::join_capped(&named, "; ", 2_000, |n| format!("…and {n} more"))
        );
        out.push(crate::flows::thread::thread_message(
            state,
            alert,
            format!("lineage:{}:named", alert.id),
            &text,
        )?);
    }
    Ok(out)
}

/// The DM to one owner.
#[allow(clippy::too_many_arguments)]
fn dm(
    tenant: &Tenant,
    job: &Job,
    a: &Assessment,
    alert: &Alert,
    impact: &Impact,
    user: &str,
    theirs: &[String],
) -> NewOutboxMessage {
    let asset = escape_slack(&job.asset_name);
    let likely = impact.done_words();
    let runs: Vec<String> = impact
        .stale_runs
        .iter()
        .map(|r| {
            format!(
                "• `{}` runs {}, before then: it would read stale {}",
                escape_slack(&r.workflow),
                date_token(r.at),
                path_text(&r.path)
            )
        })
        .collect();
    let mut text = format!(
        ":warning: *{asset}* is late ({} SLA risk, job `{}`) and it feeds yours: {}.\nIt is likely done by {likely}.",
        a.band.label(),
        job.id,
        theirs.join(", "),
    );
    if !runs.is_empty() {
        text.push_str(&format!(
            "\n{}",
            crate::slack::limits::join_capped(&runs, "\n", 1_500, |n| format!("…and {n} more"))
        ));
    }
    let channel = tenant.channel.as_str().to_string();
    let payload = serde_json::json!({
        "channel": user,
        "text": format!(
            "{asset} is late ({} SLA risk) and feeds your assets; likely done by {}",
            a.band.label(),
            crate::domain::lineage::plain(&impact.done_words())
        ),
        "_permalink": crate::store::permalink_spec(&alert.id, &channel),
        "blocks": [
            { "type": "section", "text": { "type": "mrkdwn", "text": text } },
            { "type": "context", "elements": [
                { "type": "mrkdwn", "text": format!(
                    "You own these assets in Servo · <{}|Open the alert>",
                    crate::store::PERMALINK
                ) }
            ] }
        ]
    });
    NewOutboxMessage::call(
        "chat.postMessage",
        payload,
        format!("lineage:{}:owner:{user}", alert.id),
    )
}

/// What `job` means downstream in `lineage` (to `lineage.depth` hops, as
/// likely done by its forecast or trusted ETA), with the owners of its first
/// `named` downstream assets named ([`name_owners`]): the poll's and
/// `/backfill impact`'s one way to it.
pub async fn attach_impact(
    state: &AppState,
    job: &mut Job,
    lineage: &crate::domain::lineage::Lineage,
    now: DateTime<Utc>,
    named: usize,
) {
    job.attach_impact(
        lineage,
        state.config.lineage.depth,
        now,
        &state.config.risk.thresholds(),
    );
    if let Some(impact) = job.impact.as_mut() {
        name_owners(state, impact, named).await;
    }
}

/// Names the owners of `impact`'s first `limit` downstream assets that are
/// Slack users by their display name ([`Directory::user_name`], cached), so
/// that the alert, its pages and `/backfill impact` name them as plain text:
/// a mention would notify them on every alert, and they hear of it once, by
/// `lineage.notify_owners_at` ([`notify_owners`]).
///
/// [`Directory::user_name`]: crate::slack::directory::Directory::user_name
pub async fn name_owners(state: &AppState, impact: &mut Impact, limit: usize) {
    let mut names = HashMap::new();
    for user in impact.owner_users(limit) {
        let name = state.directory.user_name(&user).await;
        names.insert(user, name);
    }
    impact.name_owners(&names);
}

/// The upstream jobs `root` waits on (Servo's job tree: `parent_job_id`),
/// each assessed, furthest upstream first: one read of the tenant's active
/// jobs.
pub async fn upstream_jobs(
    state: &AppState,
    tenant: &Tenant,
    root: &Job,
) -> Result<Vec<(Job, Assessment)>, crate::servo::ServoError> {
    let jobs = state.servo.active_jobs(&tenant.id, false).await?;
    let thresholds = state.config.risk.thresholds();
    let now = state.clock.now();
    let mut children: Vec<(Job, Assessment)> = jobs
        .into_iter()
        .filter(|j| j.parent_job_id == Some(root.id))
        .map(|j| {
            let a = crate::domain::assessment::assess(&j.snapshot(), now, &thresholds, None);
            (j, a)
        })
        .collect();
    children.sort_by(|(a, _), (b, _)| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
    Ok(children)
}

/// One upstream job as a bottleneck line names it: "`orders_raw` High, ETA
/// <11:40>", "`fx_rates` on track", or "`fx_backfill` ETA unknown" (a
/// pending job with no average yet).
pub fn upstream_line(job: &Job, a: &Assessment) -> String {
    let asset = format!("`{}`", escape_slack(&job.asset_name));
    let progress = format!(
        "{}/{} partitions",
        job.completed_partitions, job.total_partitions
    );
    if a.band.is_at_risk() {
        format!(
            "{asset} {}, ETA {} ({progress})",
            a.band.label(),
            a.eta.map(date_token).unwrap_or_else(|| "unknown".into())
        )
    } else if a.eta.is_none() {
        format!("{asset} ETA unknown ({progress})")
    } else {
        format!("{asset} on track ({progress})")
    }
}

/// What the poll learned of its job trees (Servo's upstream propagation).
#[derive(Debug, Default)]
pub struct Trees {
    /// Upstream jobs at risk together with their root: they get no alert of
    /// their own, the root's names them.
    pub folded: HashSet<Uuid>,
    /// Root → each upstream job's (id, band, line), for the root's thread.
    pub children: HashMap<Uuid, Vec<(Uuid, RiskBand, String)>>,
}

/// Each waiting root near risk (its history was read) names its upstream
/// jobs as its bottleneck, with each one's progress and band; its ETA starts
/// when they are likely done (their P50 and P90, else their ETA); and the
/// ones at risk together with it are folded into its alert. One read of the
/// tenant's active jobs, only when there is such a root.
///
/// The poll runs it on the tenant's jobs; [`crate::flows::poll::job`] on the
/// one job a status card, `/backfill impact` or an extension asks for, so
/// that they see a waiting root as its alert does. An upstream job's P50
/// and P90 are the forecast the caller attached to it, when it is among
/// `jobs`; else its ETA.
pub async fn job_trees(
    state: &AppState,
    tenant: &Tenant,
    jobs: &mut [Job],
    near_risk: &HashMap<Uuid, Vec<crate::domain::forecast::PartitionObs>>,
    now: DateTime<Utc>,
) -> Trees {
    let mut trees = Trees::default();
    let roots: Vec<Uuid> = jobs
        .iter()
        .filter(|j| {
            j.state == JobState::WaitingUpstream
                && j.upstream_job_count > j.completed_upstream_jobs
                && near_risk.contains_key(&j.id)
        })
        .map(|j| j.id)
        .collect();
    if roots.is_empty() {
        return trees;
    }
    let all = match state.servo.active_jobs(&tenant.id, false).await {
        Ok(all) => all,
        Err(e) => {
            tracing::warn!(tenant = %tenant.id, error = %e, "the job trees could not be read: waiting roots are judged as if they started now");
            return trees;
        }
    };
    let thresholds = state.config.risk.thresholds();
    let assess = |j: &Job| crate::domain::assessment::assess(&j.snapshot(), now, &thresholds, None);
    // Indexed once, so that a storm of waiting roots over a tenant's
    // thousands of jobs costs one pass, not one per root.
    let mut by_parent: HashMap<Uuid, Vec<&Job>> = HashMap::new();
    for c in &all {
        if let Some(parent) = c.parent_job_id {
            by_parent.entry(parent).or_default().push(c);
        }
    }
    let position: HashMap<Uuid, usize> = jobs.iter().enumerate().map(|(i, j)| (j.id, i)).collect();
    for root in roots {
        let mut children: Vec<(Job, Assessment)> = by_parent
            .get(&root)
            .into_iter()
            .flatten()
            // The poll's own read of it, with its forecast, when it has one.
            .map(|c| position.get(&c.id).map_or(*c, |&i| &jobs[i]).clone())
            .map(|c| {
                let a = assess(&c);
                (c, a)
            })
            .collect();
        // Servo counts the upstream jobs still owed; the ones not among the
        // active jobs failed or were cancelled, and the root waits for them
        // until they are run again.
        let stalled = position.get(&root).map_or(0, |&i| {
            let owed = jobs[i].upstream_job_count - jobs[i].completed_upstream_jobs;
            usize::try_from(owed)
                .unwrap_or(0)
                .saturating_sub(children.len())
        });
        if children.is_empty() && stalled == 0 {
            continue;
        }
        children.sort_by(|(a, _), (b, _)| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        // When the upstream jobs are likely done: the latest P50 and P90 of
        // those whose ETA is known. One without (a pending job with no
        // average yet, the common case for one waiting its turn) does not
        // erase the others: the wait is at least theirs, and the note says
        // that some are unknown.
        let (done, unknown) = upstream_done(&children);
        let Some(job) = position.get(&root).map(|&i| &mut jobs[i]) else {
            continue;
        };
        if let Some((c50, c90)) = done {
            // The root's own estimate is as if it started now: it starts
            // when they are done.
            let own = job.forecast.or_else(|| assess(job).eta.map(|e| (e, e)));
            match own {
                Some((p50, p90)) => {
                    let wait = |t: DateTime<Utc>| (t - now).max(chrono::Duration::zero());
                    job.forecast = Some((p50 + wait(c50), p90 + wait(c90)));
                }
                // None of its own work has run (Servo's usual root): it is
                // done no sooner than they are. Judged on that floor, a
                // root whose upstream jobs finish past its deadline is
                // alerted now, not when the deadline passes.
                None => {
                    job.forecast = Some((c50.max(now), c90.max(now)));
                    job.wait_only = true;
                }
            }
        }
        let lines: Vec<String> = children.iter().map(|(c, a)| upstream_line(c, a)).collect();
        let mut note = if children.is_empty() {
            String::new()
        } else {
            format!(
                "Waiting on {}: {}",
                crate::domain::text::count(children.len(), "upstream job", "upstream jobs"),
                crate::slack::limits::join_capped(&lines, "; ", 1_000, |n| format!(
                    "…and {n} more"
                ))
            )
        };
        if stalled > 0 {
            if !note.is_empty() {
                note.push_str(". ");
            }
            note.push_str(&format!(
                ":x: {} it waits for {} running: failed or cancelled in Servo, so it will not start until {} run again",
                crate::domain::text::count(stalled, "upstream job", "upstream jobs"),
                if stalled == 1 { "is not" } else { "are not" },
                if stalled == 1 { "that one is" } else { "they are" }
            ));
        }
        if job.wait_only {
            note.push_str(
                " (this ETA is when they are likely done: its own work is not counted, none of it has run yet, so it will finish later)",
            );
        }
        if unknown > 0 {
            let which = if unknown == 1 {
                "the ETA of 1 upstream job is unknown".to_string()
            } else {
                format!("the ETAs of {unknown} upstream jobs are unknown")
            };
            let so = if done.is_some() {
                "this ETA waits only for the known ones, so it may be later"
            } else {
                "this ETA is as if it started now, so it may be later"
            };
            note.push_str(&format!(" ({which}: {so})"));
        }
        job.upstream_note = Some(note);
        if assess(job).band.is_at_risk() {
            trees.folded.extend(
                children
                    .iter()
                    .filter(|(_, a)| a.band.is_at_risk())
                    .map(|(c, _)| c.id),
            );
        }
        trees.children.insert(
            root,
            children
                .iter()
                .map(|(c, a)| (c.id, a.band, upstream_line(c, a)))
                .collect(),
        );
    }
    trees
}

/// A (P50, P90) pair of times.
type P50P90 = (DateTime<Utc>, DateTime<Utc>);

/// When a root's upstream jobs are likely done: the latest P50 and P90 of
/// those whose ETA is known (their forecast, else their ETA), and how many
/// have none. An unknown ETA does not hide the known ones: the root waits at
/// least for them.
fn upstream_done(children: &[(Job, Assessment)]) -> (Option<P50P90>, usize) {
    let mut done: Option<P50P90> = None;
    let mut unknown = 0;
    for (c, a) in children {
        match c.forecast.or(a.eta.map(|e| (e, e))) {
            Some((p50, p90)) => {
                done = Some(match done {
                    Some((x, y)) => (x.max(p50), y.max(p90)),
                    None => (p50, p90),
                });
            }
            None => unknown += 1,
        }
    }
    (done, unknown)
}

/// In each open root alert's thread, a line per upstream job at risk, once
/// per band it reaches. Never holds up the poll: a failure is logged.
pub async fn tree_notes(state: &AppState, trees: &Trees, open: &HashMap<String, Alert>) {
    let mut out = Vec::new();
    for (root, children) in &trees.children {
        let Some(alert) = open.get(&root.to_string()) else {
            continue;
        };
        for (child, band, line) in children.iter().filter(|(_, b, _)| b.is_at_risk()) {
            let text =
                format!(":arrow_up: Upstream job holding this one up: {line} · job `{child}`");
            match crate::flows::thread::thread_message(
                state,
                alert,
                format!("tree:{}:{child}:{}", alert.id, band.as_str()),
                &text,
            ) {
                Ok(m) => out.push(m),
                Err(e) => {
                    tracing::warn!(alert = %alert.id, error = %e, "could not note an upstream job")
                }
            }
        }
    }
    if !out.is_empty() {
        if let Err(e) = state.enqueue_many(&out).await {
            tracing::warn!(error = %e, "could not enqueue the upstream jobs' notes");
        }
    }
}
