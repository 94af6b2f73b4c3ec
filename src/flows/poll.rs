//! One tenant's assessment: its active jobs read from Servo, each assessed
//! (forecast included) and reconciled with its alert, the preventive checks,
//! and the extension requests of finished jobs closed. The poller
//! ([`crate::workers::poller`]) runs it on its schedule; an approval runs it at once.
//! A tenant whose Servo query fails is skipped: an unreachable Servo never
//! resolves an alert as recovered. So is one whose storm roll-up the store
//! could not decide: its alerts never go out one by one, each paging on its
//! own, for a failure the next poll may not have.

use crate::config::Tenant;
use crate::context::AppState;
use crate::domain::assessment::Assessment;
use crate::domain::assessment::{self, RiskThresholds};
use crate::domain::forecast::pool::Profile;
use crate::domain::forecast::Calibration;
use crate::domain::forecast::{ClassPrior, PartitionObs};
use crate::domain::risk::RiskBand;
use crate::flows::alerts::{self, Change};
use crate::flows::incidents::Judged;
use crate::servo::Job;
use crate::servo::ServoError;
use crate::store::{Alert, ForecastRecord};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap, HashSet};
use uuid::Uuid;

/// What one poll of one tenant did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TenantPoll {
    pub jobs: usize,
    pub posted: usize,
    pub edited: usize,
    pub resolved: usize,
    /// At-risk jobs by band (`low`, `medium`, `high`, `breached`).
    pub at_risk: BTreeMap<String, usize>,
    /// What the buffer check and early warning did.
    pub preventive: crate::flows::preventive::PreventiveOutcome,
}

/// Assesses one tenant's jobs and reconciles its alerts.
pub async fn tenant(
    state: &AppState,
    tenant: &Tenant,
    now: DateTime<Utc>,
) -> Result<TenantPoll, PollError> {
    tenant_judged(state, tenant, now)
        .await
        .map(|(poll, _)| poll)
}

/// The same, with what the poll judged, for the judgements across tenants
/// (the poller's; an approval's re-assessment needs only [`tenant`]).
pub async fn tenant_judged(
    state: &AppState,
    tenant: &Tenant,
    now: DateTime<Utc>,
) -> Result<(TenantPoll, Judged), PollError> {
    let mut jobs = state.servo.active_jobs(&tenant.id, true).await?;
    let open = open_alerts_by_job(state, tenant).await?;
    let histories = read_histories(state, tenant, &jobs, &open, now).await?;
    forecast(state, tenant, &mut jobs, &histories, now).await?;
    // A waiting root's ETA starts when its upstream jobs are likely done,
    // before its downstream impact is told from it (issue 37).
    let trees = crate::flows::lineage::job_trees(state, tenant, &mut jobs, &histories, now).await;
    downstream(state, tenant, &mut jobs, &histories, now).await;
    let mut poll = TenantPoll {
        jobs: jobs.len(),
        ..TenantPoll::default()
    };
    // Every job assessed first: a storm's roll-up is decided before the
    // alerts, so that their posts can reply to it.
    let judged = judge(state, &jobs, &open, now);
    // The roll-up is part of the poll's decision: its alerts reply in its
    // thread and page through its one escalation. Undecided because the
    // store failed (or the bot stopped there), the tenant's poll stops here
    // and the next one decides again: going on without it posted a storm's
    // alerts one by one, each paging on its own (a page per job for every
    // person, issue 35's storm again), and the alerts need the store all the
    // same. Any other failure (its message could not be rendered) would fail
    // every poll alike: then the alerts go out one by one, loud but not lost.
    let rollup = match crate::flows::rollup::reconcile(state, tenant, &judged, &trees, now).await {
        Ok(r) => r,
        Err(e) if e.downcast_ref::<crate::store::StoreError>().is_some() => {
            return Err(PollError::Other(format!(
                "the storm's roll-up was not decided: {e:#}"
            )));
        }
        Err(e) => {
            tracing::error!(tenant = %tenant.id, error = %e, "the storm roll-up cannot be made: this poll's alerts go out one by one");
            None
        }
    };
    // What each mitigation bought before, for the alerts' confirm dialogs
    // (issue 38): once per tenant and poll, only when an alert is shown.
    if !open.is_empty() || judged.iter().any(|(_, a)| a.band.is_at_risk()) {
        if let Err(e) = crate::flows::bought::refresh(state, &tenant.id).await {
            tracing::warn!(tenant = %tenant.id, error = %e, "the mitigation history was not read this poll");
        }
    }
    let (seen, posted) = reconcile_alerts(
        state,
        tenant,
        &judged,
        &open,
        rollup.as_deref(),
        &trees.folded,
        &mut poll,
        now,
    )
    .await?;
    resolve_departed(state, tenant, &open, &seen, &mut poll, now).await?;
    // The open alerts after this poll: for the judgements across tenants
    // and the preventive side.
    let open_now = open_alerts_by_job(state, tenant).await?;
    let at_risk: Vec<(Alert, crate::servo::Job)> = jobs
        .iter()
        .filter_map(|j| {
            open_now
                .get(&j.id.to_string())
                .map(|a| (a.clone(), j.clone()))
        })
        .collect();
    // A storm pages once: its roll-up's escalation starts (or re-arms once
    // on a breach) after every alert of the poll is in the outbox, so the
    // channel's messages go before the page DMs (issue 35). A failure is
    // logged; the next poll tries again.
    let before: HashMap<String, RiskBand> = open.iter().map(|(k, a)| (k.clone(), a.band)).collect();
    if let Err(e) =
        crate::flows::group_paging::reconcile(state, tenant, rollup.as_deref(), &judged, &before)
            .await
    {
        tracing::warn!(tenant = %tenant.id, error = %e, "the roll-up's paging skipped this poll");
    }
    // Many jobs at risk with one cause: one page from tier 2. It never holds
    // up the alerts above: a failure is logged, and the next poll tries again.
    if let Err(e) =
        crate::flows::incidents::widespread(state, tenant, &judged, rollup.as_deref(), now).await
    {
        tracing::warn!(tenant = %tenant.id, error = %e, "the widespread-slowdown check skipped this poll");
    }
    // The preventive side: buffer check, early warning, review history.
    // It never holds up the alerts above: a failure is logged.
    match crate::flows::preventive::observe(state, tenant, &judged, &open_now, now).await {
        Ok(w) => poll.preventive = w,
        Err(e) => {
            tracing::warn!(tenant = %tenant.id, error = %e, "early warning and review history skipped this poll")
        }
    }
    burn_downs(state, tenant, &judged, &posted, &open_now, &histories, now).await;
    // The downstream assets' owners, once per episode, and the upstream
    // jobs holding a root up, in its thread (issue 37).
    crate::flows::lineage::notify_owners(state, tenant, &judged, &open_now).await;
    crate::flows::lineage::tree_notes(state, &trees, &open_now).await;
    // A maintenance window's notice, its end and its summary, each once
    // (issue 35). A failure is logged; the next poll tries again.
    if let Err(e) = crate::flows::maintenance::reconcile(state, tenant, now).await {
        tracing::warn!(tenant = %tenant.id, error = %e, "the maintenance notices skipped this poll");
    }
    close_moot_requests(state, tenant, &seen, now).await?;
    let judged = Judged {
        with_history: judged
            .iter()
            .filter(|(j, _)| !j.recent_durations_ms.is_empty())
            .count(),
        rising: judged
            .iter()
            .filter(|(_, a)| {
                a.bottlenecks
                    .iter()
                    .any(|b| matches!(b, assessment::Bottleneck::DurationsRising { .. }))
            })
            .map(|(j, _)| j.asset_name.clone())
            .collect(),
        at_risk,
    };
    Ok((poll, judged))
}

/// The partition histories of the jobs that need one. They cost the most to
/// read, so only for the jobs whose alert shows bottlenecks, or whose ETA
/// depends on them.
async fn read_histories(
    state: &AppState,
    tenant: &Tenant,
    jobs: &[crate::servo::Job],
    open: &HashMap<String, Alert>,
    now: DateTime<Utc>,
) -> Result<HashMap<Uuid, Vec<PartitionObs>>, PollError> {
    let thresholds = state.config.risk.thresholds();
    let previous = |job_id: &str| open.get(job_id).map(|a| a.band);
    let needs_history: Vec<Uuid> = jobs
        .iter()
        .filter(|j| {
            j.avg_partition_duration_ms.is_none()
                || open.contains_key(&j.id.to_string())
                || near_risk(j, now, &thresholds, previous(&j.id.to_string()))
        })
        .map(|j| j.id)
        .collect();
    Ok(state
        .servo
        .partition_history(&tenant.id, &needs_history)
        .await?)
}

/// Attaches each job's history and forecast (a new asset borrowing from the
/// tenant's assets most like it), records the first forecast past each
/// checkpoint, and settles the recorded forecasts of jobs that ended.
async fn forecast(
    state: &AppState,
    tenant: &Tenant,
    jobs: &mut [crate::servo::Job],
    histories: &HashMap<Uuid, Vec<PartitionObs>>,
    now: DateTime<Utc>,
) -> Result<(), PollError> {
    let calibrations = crate::context::calibrations::calibrations(state, &tenant.id).await?;
    let mut assets: Vec<String> = jobs
        .iter()
        .filter(|j| histories.contains_key(&j.id))
        .map(|j| j.asset_name.clone())
        .collect();
    assets.sort();
    assets.dedup();
    let priors = crate::context::calibrations::period_end_priors(state, &tenant.id, &assets).await;
    let recorded: std::collections::HashSet<(String, i32)> = state
        .store
        .open_forecasts(&tenant.id)
        .await?
        .into_iter()
        .map(|f| (f.job_id, f.checkpoint))
        .collect();
    let mut to_record = Vec::new();
    for job in jobs.iter_mut() {
        let Some(h) = histories.get(&job.id) else {
            continue;
        };
        let progress = job.progress();
        // A new asset borrows from the tenant's assets most like this job.
        let profile = Profile::of(h, job.total_partitions);
        let calibration = calibrations
            .calibration(&job.asset_name, profile)
            .map(|c| *c.for_progress(progress));
        let prior = calibrations.period_end_prior(
            &job.asset_name,
            profile,
            priors.get(&job.asset_name).copied(),
        );
        let raw = job.attach_history(h, now, &state.config.risk, calibration.as_ref(), prior);
        // Keep the first forecast made past each checkpoint (a quarter, half
        // and three quarters done): calibration compares it with when the
        // job really completes.
        let checkpoint = crate::domain::forecast::checkpoint(progress).map(|c| c as i32);
        if let (Some(f), Some(checkpoint)) = (raw, checkpoint) {
            if !recorded.contains(&(job.id.to_string(), checkpoint)) {
                to_record.push(ForecastRecord {
                    tenant_id: tenant.id.clone(),
                    job_id: job.id.to_string(),
                    checkpoint,
                    asset: job.asset_name.clone(),
                    made_at: now,
                    progress,
                    p50: f.p50,
                    p90: f.p90,
                    servo_eta: job.estimated_completion_at,
                    completed_at: None,
                    profile,
                    period_end: ClassPrior::of_job(h),
                });
            }
        }
    }
    state.store.record_forecasts(&to_record).await?;
    let active: std::collections::HashSet<String> = jobs.iter().map(|j| j.id.to_string()).collect();
    let ended: std::collections::BTreeSet<&String> = recorded
        .iter()
        .map(|(id, _)| id)
        .filter(|id| !active.contains(*id))
        .collect();
    for f in ended.into_iter().take(20) {
        let Ok(id) = f.parse::<Uuid>() else { continue };
        match state.servo.get_job(&tenant.id, id).await? {
            Some(job) if job.state.is_active() => {} // lost its deadline: keep waiting
            Some(job) if job.state == crate::domain::risk::JobState::Completed => {
                let at = job.completed_at.unwrap_or(now);
                state.store.close_forecast(&tenant.id, f, at).await?;
            }
            _ => state.store.drop_forecast(&tenant.id, f).await?,
        }
    }

    Ok(())
}

/// What each job near risk means downstream (issue 37): the tenant's
/// lineage is read once for the poll, only when some job is near risk (those
/// whose history was read). Never holds up the poll: a failure is logged,
/// and each of those jobs is marked as not knowing its impact
/// ([`crate::servo::Job::lineage_unread`]), which is not the same as having
/// none: its alert keeps the impact it last showed, with a note, and nothing
/// that depends on the impact (a downstream page, the owners' DMs) acts on
/// the missing read.
async fn downstream(
    state: &AppState,
    tenant: &Tenant,
    jobs: &mut [crate::servo::Job],
    histories: &HashMap<Uuid, Vec<PartitionObs>>,
    now: DateTime<Utc>,
) {
    if histories.is_empty() {
        return;
    }
    let lineage = match state.servo.lineage(&tenant.id, now).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(tenant = %tenant.id, error = %e, "the lineage could not be read this poll");
            for job in jobs.iter_mut().filter(|j| histories.contains_key(&j.id)) {
                job.lineage_unread = Some(now);
            }
            return;
        }
    };
    if lineage.downstream.is_empty() {
        return;
    }
    for job in jobs.iter_mut().filter(|j| histories.contains_key(&j.id)) {
        // Named, not mentioned: the alert shows at most `max_lines`.
        let named = state.config.lineage.max_lines;
        crate::flows::lineage::attach_impact(state, job, &lineage, now, named).await;
    }
}

/// Each job with its assessment, in Servo's order.
fn judge<'a>(
    state: &AppState,
    jobs: &'a [crate::servo::Job],
    open: &HashMap<String, Alert>,
    now: DateTime<Utc>,
) -> Vec<(&'a crate::servo::Job, assessment::Assessment)> {
    let thresholds = state.config.risk.thresholds();
    jobs.iter()
        .map(|job| {
            let previous = open.get(&job.id.to_string()).map(|a| a.band);
            let a = assessment::assess(&job.snapshot(), now, &thresholds, previous);
            (job, a)
        })
        .collect()
}

/// Each judged job's alert reconciled with its assessment (posted, edited,
/// resolved or left); returns the jobs seen and those whose alert was posted.
#[allow(clippy::too_many_arguments)]
async fn reconcile_alerts(
    state: &AppState,
    tenant: &Tenant,
    judged: &[(&crate::servo::Job, assessment::Assessment)],
    open: &HashMap<String, Alert>,
    rollup: Option<&str>,
    folded: &HashSet<Uuid>,
    poll: &mut TenantPoll,
    now: DateTime<Utc>,
) -> Result<(HashSet<String>, HashSet<Uuid>), PollError> {
    // Open quiet notices: a job among them that goes at risk has its
    // notice's message become the alert.
    let notices = state.store.open_notices_by_job(&tenant.id).await?;
    // What every open alert needs, read once for the tenant (issue 40).
    let reads = crate::flows::poll_reads::PollReads::read(state, tenant, now).await?;
    let mut seen = HashSet::new();
    let mut posted = HashSet::new();
    let mut planned = Vec::new();
    for (job, a) in judged {
        let key = job.id.to_string();
        seen.insert(key.clone());
        if a.band.is_at_risk() {
            *poll.at_risk.entry(a.band.as_str().to_string()).or_default() += 1;
        }
        // An upstream job at risk together with its root: one alert, the
        // root's, which names it (issue 37). An alert it already has goes on.
        if folded.contains(&job.id) && !open.contains_key(&key) {
            continue;
        }
        // A new alert (not a quiet notice's message becoming one) is
        // decided now and stored with the poll's other new alerts, in one
        // transaction, after this loop.
        if a.band.is_at_risk()
            && !open.contains_key(&key)
            && notices.get(&key).is_none_or(|n| n.thread_of.is_some())
        {
            let plan = alerts::plan_new(state, tenant, job, a, rollup, now).await?;
            planned.push((plan, *job, a));
            if planned.len() >= NEW_ALERTS_PER_COMMIT {
                open_new(
                    state,
                    std::mem::take(&mut planned),
                    &reads,
                    poll,
                    &mut posted,
                    now,
                )
                .await?;
            }
            continue;
        }
        let change = alerts::reconcile(
            state,
            tenant,
            job,
            a,
            open.get(&key).cloned(),
            notices.get(&key),
            rollup,
            Some(&reads),
            now,
        )
        .await?;
        match change {
            Change::Posted => {
                poll.posted += 1;
                posted.insert(job.id);
            }
            Change::Edited => poll.edited += 1,
            Change::Resolved => poll.resolved += 1,
            Change::None => {}
        }
    }
    open_new(state, planned, &reads, poll, &mut posted, now).await?;
    // The severities of the poll's alerts, in one transaction.
    reads.write_severities(state).await?;
    Ok((seen, posted))
}

/// New alerts committed together, at most this many a transaction: one
/// commit for a tenant's storm of 50, and a bounded batch held in memory
/// (each with its rendered view and post) at 100,000 jobs.
const NEW_ALERTS_PER_COMMIT: usize = 100;

/// Stores planned new alerts with their posts, one transaction for all.
async fn open_new(
    state: &AppState,
    planned: Vec<(alerts::PlannedAlert, &crate::servo::Job, &Assessment)>,
    reads: &crate::flows::poll_reads::PollReads,
    poll: &mut TenantPoll,
    posted: &mut HashSet<Uuid>,
    now: DateTime<Utc>,
) -> Result<(), PollError> {
    let jobs: Vec<Uuid> = planned.iter().map(|(_, j, _)| j.id).collect();
    let opened = alerts::open_planned(state, planned, Some(reads), now).await?;
    for (id, change) in jobs.into_iter().zip(opened) {
        if change == Change::Posted {
            poll.posted += 1;
            posted.insert(id);
        }
    }
    Ok(())
}

/// Open alerts whose job left the list: it finished, was cancelled, or lost
/// its deadline. Looks at the job itself before saying which.
async fn resolve_departed(
    state: &AppState,
    tenant: &Tenant,
    open: &HashMap<String, Alert>,
    seen: &HashSet<String>,
    poll: &mut TenantPoll,
    now: DateTime<Utc>,
) -> Result<(), PollError> {
    let thresholds = state.config.risk.thresholds();
    for (job_id, alert) in open.iter().filter(|(id, _)| !seen.contains(*id)) {
        let Ok(id) = job_id.parse::<Uuid>() else {
            continue;
        };
        // A recreate in progress cancelled this job on purpose: the
        // alert is about to follow the new one, not to end.
        if state.store.intent_applying(&alert.id, "recreate").await? {
            continue;
        }
        let job = state.servo.get_job(&tenant.id, id).await?;
        let how = crate::flows::alert_view::ending(job.as_ref());
        match job {
            Some(job) => {
                let a = assessment::assess(&job.snapshot(), now, &thresholds, None);
                if alerts::resolve(state, alert, &job, &a, &how, now).await? == Change::Resolved {
                    poll.resolved += 1;
                }
            }
            None => {
                // Gone from Servo altogether: resolved as it was last shown.
                if alerts::resolve_gone(state, alert, &how, now).await? == Change::Resolved {
                    poll.resolved += 1;
                }
            }
        }
    }
    Ok(())
}

/// The burn-down chart of each alert this poll posted, when charts are on.
/// Never holds up the poll: a failure is logged.
async fn burn_downs(
    state: &AppState,
    tenant: &Tenant,
    judged: &[(&crate::servo::Job, assessment::Assessment)],
    posted: &HashSet<Uuid>,
    open_now: &HashMap<String, Alert>,
    histories: &HashMap<Uuid, Vec<PartitionObs>>,
    now: DateTime<Utc>,
) {
    if !state.config.review.charts || posted.is_empty() {
        return;
    }
    let charts: Vec<_> = judged
        .iter()
        .filter(|(j, _)| posted.contains(&j.id))
        .filter_map(|(job, a)| {
            let alert = open_now.get(&job.id.to_string())?;
            let history = histories.get(&job.id).map(Vec::as_slice).unwrap_or(&[]);
            crate::flows::review::burn_down_message(alert, job, a, history, now)
        })
        .collect();
    if let Err(e) = state.enqueue_many(&charts).await {
        tracing::warn!(tenant = %tenant.id, error = %e, "could not enqueue the burn-down charts");
    }
}

/// Pending extension requests of jobs that finished are moot.
async fn close_moot_requests(
    state: &AppState,
    tenant: &Tenant,
    seen: &HashSet<String>,
    now: DateTime<Utc>,
) -> Result<(), PollError> {
    let thresholds = state.config.risk.thresholds();
    let pending = state
        .store
        .list_approvals(Some(&tenant.id), Some("pending"))
        .await?;
    for request in pending.iter().filter(|r| !seen.contains(&r.job_id)) {
        let Ok(id) = request.job_id.parse::<Uuid>() else {
            continue;
        };
        if let Some(job) = state.servo.get_job(&tenant.id, id).await? {
            if job.state.is_terminal() {
                let a = assessment::assess(&job.snapshot(), now, &thresholds, None);
                crate::flows::approvals::close_moot(state, tenant, &job, &a)
                    .await
                    .map_err(|e| PollError::Other(e.to_string()))?;
            }
        }
    }
    Ok(())
}

/// Whether a job is at risk, or close enough by Servo's own ETA that the
/// forecaster should look: Servo's EWMA lags a slowdown, so a job it calls on
/// time with less than half its remaining time to spare may be late.
fn near_risk(
    job: &crate::servo::Job,
    now: DateTime<Utc>,
    thresholds: &RiskThresholds,
    previous: Option<RiskBand>,
) -> bool {
    let a = assessment::assess(&job.snapshot(), now, thresholds, previous);
    a.band.is_at_risk() || a.severity.is_some_and(|s| s > NEAR_RISK_SEVERITY)
}

/// Severity (negative: time to spare) from which the forecaster looks at a job.
const NEAR_RISK_SEVERITY: f64 = -0.5;

#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error(transparent)]
    Servo(#[from] ServoError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Alert(#[from] crate::flows::thread::AlertError),
    #[error("{0}")]
    Other(String),
}

/// A job, its assessment, its latest alert, and its asset's forecast calibration.
pub type Assessed = (Job, Assessment, Option<Alert>, Option<Calibration>);

/// A job with its history, assessed as a poll would: what a status card,
/// `/backfill impact`, an extension request or a decision starts from. A
/// root waiting on its upstream jobs is adjusted as the poll adjusts it
/// ([`crate::flows::lineage::job_trees`]): its forecast starts when they are
/// likely done and `upstream_note` names them, before it is assessed, so
/// that what these answers say agrees with the alert.
pub async fn job(
    state: &AppState,
    tenant: &Tenant,
    id: crate::domain::job_id::JobId,
) -> Result<Option<Assessed>, ServoError> {
    let Some((mut job, history)) = state.servo.job_with_history(&tenant.id, id.0).await? else {
        return Ok(None);
    };
    let now = state.clock.now();
    let calibrations = crate::context::calibrations::recent(state, &tenant.id)
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "could not read the forecasts' calibration");
            Default::default()
        });
    let profile = Profile::of(&history, job.total_partitions);
    let calibration = calibrations
        .calibration(&job.asset_name, profile)
        .map(|c| *c.for_progress(job.progress()));
    let own_prior = crate::context::calibrations::period_end_priors(
        state,
        &tenant.id,
        std::slice::from_ref(&job.asset_name),
    )
    .await
    .remove(&job.asset_name);
    let prior = calibrations.period_end_prior(&job.asset_name, profile, own_prior);
    job.attach_history(
        &history,
        now,
        &state.config.risk,
        calibration.as_ref(),
        prior,
    );
    // The poll's own job-tree step, on this one job: its history was read,
    // as the poll's is for a root near risk. It reads the tenant's active
    // jobs only when the job is a root still owed upstream jobs.
    let read = HashMap::from([(job.id, history)]);
    let mut one = [job];
    crate::flows::lineage::job_trees(state, tenant, &mut one, &read, now).await;
    let [job] = one;
    let alert = state
        .store
        .latest_alert_for_job(&tenant.id, &id.to_string())
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "could not read the job's alert");
            None
        });
    let previous = alert.as_ref().filter(|a| a.is_open()).map(|a| a.band);
    let thresholds = state.config.risk.thresholds();
    let a = assessment::assess(&job.snapshot(), now, &thresholds, previous);
    Ok(Some((job, a, alert, calibration)))
}

/// A tenant's open alerts, by job id.
async fn open_alerts_by_job(
    state: &AppState,
    tenant: &Tenant,
) -> Result<HashMap<String, Alert>, crate::store::StoreError> {
    Ok(state
        .store
        .list_open_alerts(Some(&tenant.id))
        .await?
        .into_iter()
        .map(|a| (a.job_id.clone(), a))
        .collect())
}
