//! A simulated Servo for `servo-sla-bot simulate`: jobs whose partitions run
//! in simulated time, with the same state rules as Servo's own tools (pause
//! only from `running`, the partition in flight finishes first, resume goes
//! through `resuming`, the deadline change checks `version`, recreate cancels
//! and starts the uncompleted partitions). Servo's ETA is computed the way
//! Servo computes it: an EWMA of partition durations (alpha 0.3) written
//! after each partition, `now + remaining x avg`.
//!
//! Time is read from the injected clock: every call first advances the world
//! to "now", so the bot sees exactly what a real Servo would show at that time.

use super::{Job, ServoActionError, ServoError, RECREATE_REASON};
use crate::domain::forecast::{PartitionObs, PartitionState};
use crate::domain::risk::JobState;
use crate::runtime::clock::SharedClock;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use uuid::Uuid;

/// Servo's EWMA weight for the newest partition duration.
const EWMA_ALPHA: f64 = 0.3;
/// How long the executor takes to pick up a job that is ready (or resuming).
const PICK_UP: Duration = Duration::seconds(30);

/// One job as a scenario describes it.
#[derive(Clone, Debug)]
pub struct SimJobSpec {
    /// The scenario's name for the job (shown in the timeline).
    pub name: String,
    pub tenant: String,
    pub asset: String,
    pub owner: Option<String>,
    pub partitions: usize,
    /// How many partitions run at once.
    pub parallelism: usize,
    /// When the job was created (may be before the scenario starts).
    pub created: DateTime<Utc>,
    /// How long one partition takes, from a time on: sorted by time; the
    /// first entry applies from the start.
    pub pace: Vec<(DateTime<Utc>, Duration)>,
    /// From a time on, this many of the partitions that finish next fail.
    pub failures: Vec<(DateTime<Utc>, usize)>,
    /// Upstream jobs the job waits for, and when they are all done.
    pub upstream: Option<(i64, DateTime<Utc>)>,
    pub deadline: Option<DateTime<Utc>>,
    pub priority: i32,
    /// The first partition's date; partition keys are consecutive days.
    pub first_partition: NaiveDate,
}

/// Something that changed in Servo: what the timeline shows as a Servo event.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ServoChange {
    pub at: DateTime<Utc>,
    /// The scenario's name for the job.
    pub job: String,
    pub what: String,
}

#[derive(Clone, Debug)]
struct InFlight {
    key: String,
    end: DateTime<Utc>,
    started: DateTime<Utc>,
}

#[derive(Debug)]
struct SimJob {
    name: String,
    job: Job,
    spec: Arc<SimJobSpec>,
    /// Partition durations are divided by this (a recreated job runs at priority 10).
    speedup: f64,
    /// When the executor picks the job up (start, or resume).
    ready_at: DateTime<Utc>,
    pending: VecDeque<String>,
    slots: Vec<Option<InFlight>>,
    completed_keys: Vec<String>,
    durations: Vec<i64>,
    /// Every finished partition, as `backfill_partitions` would show it.
    history: Vec<PartitionObs>,
    /// Partitions left to fail, per failure window already reached.
    failures_used: Vec<usize>,
    successor: Option<Uuid>,
}

#[derive(Debug, Default)]
struct World {
    jobs: Vec<SimJob>,
    changes: Vec<ServoChange>,
    assets: HashMap<String, Uuid>,
    /// The scenario's lineage and scheduled workflows, by asset name.
    lineage: SimLineage,
}

/// A scenario's lineage (issue 37): assets with owners, which assets each
/// reads, and scheduled workflows. Names, not ids: the simulated Servo gives
/// each asset its id.
#[derive(Clone, Debug, Default)]
pub struct SimLineage {
    /// (asset, owner, the assets it reads).
    pub assets: Vec<(String, Option<String>, Vec<String>)>,
    pub workflows: Vec<SimWorkflow>,
}

/// A scheduled workflow of a scenario.
#[derive(Clone, Debug)]
pub struct SimWorkflow {
    pub name: String,
    pub owner: Option<String>,
    pub cron: Option<String>,
    pub timezone: String,
    pub next_scheduled_run: Option<DateTime<Utc>>,
    pub assets: Vec<String>,
}

/// The simulated Servo. Clones share one world.
#[derive(Clone)]
pub struct SimServo {
    world: Arc<Mutex<World>>,
    clock: SharedClock,
    /// Windows in which Servo's database cannot be reached.
    outages: Arc<Vec<(DateTime<Utc>, DateTime<Utc>)>>,
    /// How much faster partitions run for a job recreated at priority 10.
    priority_speedup: f64,
}

impl std::fmt::Debug for SimServo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimServo").finish_non_exhaustive()
    }
}

/// The id the simulation gives its `n`th job (1-based): recognisable, stable.
pub fn sim_job_id(n: usize) -> Uuid {
    Uuid::from_u128(0x5e7f0000_0000_4000_8000_000000000000 | n as u128)
}

impl SimServo {
    pub fn new(
        clock: SharedClock,
        jobs: Vec<SimJobSpec>,
        outages: Vec<(DateTime<Utc>, DateTime<Utc>)>,
        priority_speedup: f64,
    ) -> SimServo {
        let servo = SimServo {
            world: Arc::new(Mutex::new(World::default())),
            clock,
            outages: Arc::new(outages),
            priority_speedup: priority_speedup.max(0.01),
        };
        {
            let mut w = servo.lock();
            for spec in jobs {
                let keys = (0..spec.partitions)
                    .map(|i| (spec.first_partition + Duration::days(i as i64)).to_string())
                    .collect();
                let ready = spec.upstream.map(|(_, at)| at).unwrap_or(spec.created) + PICK_UP;
                w.add_job(spec.name.clone(), Arc::new(spec), keys, 1.0, ready, None);
            }
        }
        servo
    }

    fn lock(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Advances every job to the clock's now, or says Servo is unreachable.
    fn world_now(&self) -> Result<(MutexGuard<'_, World>, DateTime<Utc>), ServoError> {
        let now = self.clock.now();
        if self
            .outages
            .iter()
            .any(|(from, to)| *from <= now && now < *to)
        {
            return Err(ServoError::Unreachable(
                "connection refused (simulated outage)".into(),
            ));
        }
        let mut w = self.lock();
        w.advance(now);
        Ok((w, now))
    }

    /// Everything that changed so far, in order.
    pub fn changes(&self) -> Vec<ServoChange> {
        self.lock().changes.clone()
    }

    /// Advances the world to `now` without reading anything (the simulation
    /// does this so natural changes are logged at their time).
    pub fn advance_to(&self, now: DateTime<Utc>) {
        self.lock().advance(now);
    }

    /// The id of the job a scenario calls `name` now: after a recreate, the new job.
    pub fn current_id(&self, name: &str) -> Option<Uuid> {
        let w = self.lock();
        let mut job = w.jobs.iter().find(|j| j.name == name)?;
        while let Some(next) = job.successor {
            job = w.jobs.iter().find(|j| j.job.id == next)?;
        }
        Some(job.job.id)
    }

    /// The job a recreate replaced this one with.
    pub fn successor(&self, id: Uuid) -> Option<Uuid> {
        self.lock().find(id).and_then(|j| j.successor)
    }

    /// Every job's id and scenario name.
    pub fn names(&self) -> Vec<(Uuid, String)> {
        self.lock()
            .jobs
            .iter()
            .map(|j| (j.job.id, j.name.clone()))
            .collect()
    }

    /// The scenario's name for a job id.
    pub fn name_of(&self, id: Uuid) -> Option<String> {
        self.lock().find(id).map(|j| j.name.clone())
    }

    /// Whether every job has ended.
    pub fn all_ended(&self) -> bool {
        self.lock().jobs.iter().all(|j| !j.job.state.is_active())
    }

    /// A job as it stands (for reports), whatever its tenant.
    pub fn job(&self, id: Uuid) -> Option<Job> {
        self.lock().find(id).map(|j| j.job.clone())
    }

    pub fn active_jobs(&self, tenant: &str, deadline_only: bool) -> Result<Vec<Job>, ServoError> {
        let (w, _) = self.world_now()?;
        let mut jobs: Vec<Job> = w
            .jobs
            .iter()
            .filter(|j| j.job.tenant_id == tenant && j.job.state.is_active())
            .filter(|j| !deadline_only || j.job.sla_deadline_at.is_some())
            .map(|j| j.job.clone())
            .collect();
        jobs.sort_by_key(|j| (j.sla_deadline_at.is_none(), j.sla_deadline_at, j.id));
        Ok(jobs)
    }

    pub fn get_job(&self, tenant: &str, id: Uuid) -> Result<Option<Job>, ServoError> {
        let (w, _) = self.world_now()?;
        Ok(w.find(id)
            .filter(|j| j.job.tenant_id == tenant)
            .map(|j| j.job.clone()))
    }

    pub fn recent_durations(
        &self,
        tenant: &str,
        ids: &[Uuid],
        n: i64,
    ) -> Result<HashMap<Uuid, Vec<i64>>, ServoError> {
        let (w, _) = self.world_now()?;
        let n = n.max(0) as usize;
        Ok(ids
            .iter()
            .filter_map(|id| w.find(*id).filter(|j| j.job.tenant_id == tenant))
            .map(|j| {
                let skip = j.durations.len().saturating_sub(n);
                (j.job.id, j.durations[skip..].to_vec())
            })
            .collect())
    }

    /// The finished partitions of each asset's last `jobs` completed jobs.
    pub fn asset_history(
        &self,
        tenant: &str,
        assets: &[String],
        jobs: i64,
    ) -> Result<HashMap<String, Vec<Vec<PartitionObs>>>, ServoError> {
        let (w, _) = self.world_now()?;
        let mut out: HashMap<String, Vec<Vec<PartitionObs>>> = HashMap::new();
        let mut done: Vec<&SimJob> = w
            .jobs
            .iter()
            .filter(|j| {
                j.job.tenant_id == tenant
                    && j.job.state == JobState::Completed
                    && assets.contains(&j.job.asset_name)
            })
            .collect();
        done.sort_by_key(|j| std::cmp::Reverse(j.job.completed_at));
        for j in done {
            let of_asset = out.entry(j.job.asset_name.clone()).or_default();
            if (of_asset.len() as i64) < jobs {
                of_asset.push(
                    j.history
                        .iter()
                        .filter(|p| p.state == PartitionState::Completed)
                        .cloned()
                        .collect(),
                );
            }
        }
        Ok(out)
    }

    pub fn partition_history(
        &self,
        tenant: &str,
        ids: &[Uuid],
    ) -> Result<HashMap<Uuid, Vec<PartitionObs>>, ServoError> {
        let (w, _) = self.world_now()?;
        Ok(ids
            .iter()
            .filter_map(|id| w.find(*id).filter(|j| j.job.tenant_id == tenant))
            .map(|j| {
                let mut all = j.history.clone();
                all.extend(j.slots.iter().flatten().map(|f| PartitionObs {
                    key: f.key.clone(),
                    state: PartitionState::Running,
                    started_at: Some(f.started),
                    completed_at: None,
                    duration_ms: None,
                    attempt_count: 1,
                }));
                all.extend(j.pending.iter().map(|k| PartitionObs {
                    key: k.clone(),
                    state: PartitionState::Pending,
                    started_at: None,
                    completed_at: None,
                    duration_ms: None,
                    attempt_count: 0,
                }));
                (j.job.id, all)
            })
            .collect())
    }

    /// Locks the world at now and finds the tenant's job, as Servo's tools do.
    fn with_job<T>(
        &self,
        tenant: &str,
        id: Uuid,
        f: impl FnOnce(&mut World, usize, DateTime<Utc>) -> Result<T, ServoActionError>,
    ) -> Result<T, ServoActionError> {
        let (mut w, now) = self.world_now()?;
        let idx = w
            .jobs
            .iter()
            .position(|j| j.job.id == id && j.job.tenant_id == tenant)
            .ok_or(ServoActionError::NotFound)?;
        f(&mut w, idx, now)
    }

    /// Gives the simulated Servo a lineage and scheduled workflows.
    pub fn with_lineage(self, lineage: SimLineage) -> Self {
        self.lock().lineage = lineage;
        self
    }

    /// The lineage and scheduled workflows (one for every tenant: a
    /// scenario's assets are its tenants' alike).
    pub fn lineage(&self, _tenant: &str) -> crate::domain::lineage::Lineage {
        use crate::domain::lineage::{AssetNode, Lineage, Schedule, Workflow};
        let mut w = self.lock();
        let l = w.lineage.clone();
        let mut names: Vec<String> = l.assets.iter().map(|(n, _, _)| n.clone()).collect();
        for (_, _, reads) in &l.assets {
            names.extend(reads.iter().cloned());
        }
        for wf in &l.workflows {
            names.extend(wf.assets.iter().cloned());
        }
        let mut id = |name: &str| w.asset_id(name);
        let ids: HashMap<String, Uuid> = names.iter().map(|n| (n.clone(), id(n))).collect();
        let owner = |n: &str| {
            l.assets
                .iter()
                .find(|(a, _, _)| a == n)
                .and_then(|(_, o, _)| o.clone())
        };
        let assets = ids
            .iter()
            .map(|(name, id)| AssetNode {
                id: *id,
                name: name.clone(),
                owner: owner(name),
            })
            .collect();
        let edges = l
            .assets
            .iter()
            .flat_map(|(down, _, reads)| reads.iter().map(|up| (ids[up], ids[down])))
            .collect();
        let workflows = l
            .workflows
            .iter()
            .enumerate()
            .map(|(i, wf)| Workflow {
                id: Uuid::from_u128(0x3f100000_0000_4000_8000_000000000000 | i as u128),
                name: wf.name.clone(),
                owner: wf.owner.clone(),
                schedule: Schedule {
                    cron: wf.cron.clone(),
                    timezone: wf.timezone.clone(),
                    enabled: true,
                    next_scheduled_run: wf.next_scheduled_run,
                },
                assets: wf.assets.iter().map(|a| ids[a]).collect(),
            })
            .collect();
        Lineage::new(assets, edges, workflows)
    }

    pub fn pause(&self, tenant: &str, id: Uuid) -> Result<Job, ServoActionError> {
        self.with_job(tenant, id, |w, i, now| {
            let j = &mut w.jobs[i];
            if j.job.state != JobState::Running {
                return Err(invalid(
                    j.job.state,
                    "Cannot pause job in state '{}'. Only running jobs can be paused.",
                ));
            }
            j.job.state = JobState::Paused;
            j.job.paused_at = Some(now);
            if let Some(last) = j.completed_keys.last() {
                j.job.checkpoint_partition_key = Some(last.clone());
            }
            j.job.heartbeat_at = Some(now);
            j.job.version += 1;
            let (name, job) = (j.name.clone(), j.job.clone());
            w.log(now, &name, "paused (the partitions in flight finish first)");
            Ok(job)
        })
    }

    pub fn resume(&self, tenant: &str, id: Uuid) -> Result<Job, ServoActionError> {
        self.with_job(tenant, id, |w, i, now| {
            let j = &mut w.jobs[i];
            if j.job.state != JobState::Paused {
                return Err(invalid(
                    j.job.state,
                    "Cannot resume job in state '{}'. Only paused jobs can be resumed.",
                ));
            }
            j.job.state = JobState::Resuming;
            j.job.heartbeat_at = Some(now);
            j.job.version += 1;
            j.ready_at = now + PICK_UP;
            let (name, job) = (j.name.clone(), j.job.clone());
            w.log(now, &name, "resuming");
            Ok(job)
        })
    }

    pub fn set_deadline(
        &self,
        tenant: &str,
        id: Uuid,
        deadline: DateTime<Utc>,
        seen_version: i64,
    ) -> Result<Job, ServoActionError> {
        self.with_job(tenant, id, |w, i, now| {
            let j = &mut w.jobs[i];
            if j.job.version != seen_version {
                return Err(ServoActionError::VersionConflict);
            }
            j.job.sla_deadline_at = Some(deadline);
            j.job.version += 1;
            let (name, job) = (j.name.clone(), j.job.clone());
            w.log(
                now,
                &name,
                &format!("deadline moved to {}", deadline.format("%a %H:%M UTC")),
            );
            Ok(job)
        })
    }

    pub fn cancel(&self, tenant: &str, id: Uuid, reason: &str) -> Result<Job, ServoActionError> {
        self.with_job(tenant, id, |w, i, now| {
            w.cancel(i, reason, now)?;
            Ok(w.jobs[i].job.clone())
        })
    }

    pub fn recreate(
        &self,
        tenant: &str,
        id: Uuid,
        priority: i32,
        created_by: &str,
    ) -> Result<(Job, Job), ServoActionError> {
        let speedup = self.priority_speedup;
        self.with_job(tenant, id, |w, i, now| {
            let old = &w.jobs[i];
            if let Some(refusal) = super::recreate_refusal(&old.job) {
                return Err(refusal);
            }
            if old.job.priority >= priority {
                return Err(ServoActionError::InvalidState {
                    state: old.job.state.as_str().to_string(),
                    message: format!("The job already has priority {}.", old.job.priority),
                });
            }
            if !old.job.state.is_active() {
                return Err(invalid(
                    old.job.state,
                    "Cannot cancel job in state '{}'. Only active jobs can be cancelled.",
                ));
            }
            let remaining: Vec<String> = old
                .job
                .partition_keys
                .iter()
                .filter(|k| !old.completed_keys.contains(k))
                .cloned()
                .collect();
            if remaining.is_empty() {
                return Err(ServoActionError::InvalidState {
                    state: old.job.state.as_str().to_string(),
                    message: "Every partition is already completed; there is nothing to recreate."
                        .into(),
                });
            }
            let (spec, name, old_speedup) = (old.spec.clone(), old.name.clone(), old.speedup);
            w.cancel(i, RECREATE_REASON, now)?;
            let new_name = format!("{name} (recreated)");
            let new_id = w.add_job(
                new_name.clone(),
                spec,
                remaining,
                old_speedup * speedup,
                now + PICK_UP,
                Some((now, priority, created_by.to_string())),
            );
            w.jobs[i].successor = Some(new_id);
            // The scenario's failures happen once: the new job retries the
            // partitions that failed, and they succeed.
            let used = w.jobs[i].failures_used.clone();
            if let Some(new) = w.jobs.iter_mut().find(|j| j.job.id == new_id) {
                new.failures_used = used;
            }
            w.log(
                now,
                &name,
                &format!("recreated as `{new_name}` at priority {priority}"),
            );
            let old = w.jobs[i].job.clone();
            let new = w.find(new_id).map(|j| j.job.clone()).expect("just added");
            Ok((old, new))
        })
    }
}

fn invalid(state: JobState, template: &str) -> ServoActionError {
    ServoActionError::InvalidState {
        state: state.as_str().to_string(),
        message: template.replace("{}", state.as_str()),
    }
}

impl World {
    fn find(&self, id: Uuid) -> Option<&SimJob> {
        self.jobs.iter().find(|j| j.job.id == id)
    }

    fn log(&mut self, at: DateTime<Utc>, job: &str, what: &str) {
        self.changes.push(ServoChange {
            at,
            job: job.to_string(),
            what: what.to_string(),
        });
    }

    /// Adds a job; `recreated` is (when, priority, by) for a recreated one.
    /// The asset's id, given on first sight.
    fn asset_id(&mut self, name: &str) -> Uuid {
        let next_asset = self.assets.len() as u128 + 1;
        *self
            .assets
            .entry(name.to_string())
            .or_insert_with(|| Uuid::from_u128(0xa55e7000_0000_4000_8000_000000000000 | next_asset))
    }

    fn add_job(
        &mut self,
        name: String,
        spec: Arc<SimJobSpec>,
        keys: Vec<String>,
        speedup: f64,
        ready_at: DateTime<Utc>,
        recreated: Option<(DateTime<Utc>, i32, String)>,
    ) -> Uuid {
        let n = self.jobs.len() + 1;
        let next_asset = self.assets.len() as u128 + 1;
        let asset_id = *self.assets.entry(spec.asset.clone()).or_insert_with(|| {
            Uuid::from_u128(0xa55e7000_0000_4000_8000_000000000000 | next_asset)
        });
        let id = sim_job_id(n);
        let created_at = recreated.as_ref().map(|r| r.0).unwrap_or(spec.created);
        let waits = recreated.is_none() && spec.upstream.is_some();
        let job = Job {
            id,
            tenant_id: spec.tenant.clone(),
            asset_id,
            asset_name: spec.asset.clone(),
            asset_owner: spec.owner.clone(),
            idempotency_key: format!("{}:{}:{}", asset_id, keys[0], n),
            state: if waits {
                JobState::WaitingUpstream
            } else {
                JobState::Pending
            },
            execution_strategy: serde_json::json!({"type": "sequential"}),
            partition_start: keys.first().cloned(),
            partition_end: keys.last().cloned(),
            total_partitions: keys.len() as i64,
            partition_keys: keys.clone(),
            completed_partitions: 0,
            failed_partitions: 0,
            skipped_partitions: 0,
            error_message: None,
            created_by: Some(
                recreated
                    .as_ref()
                    .map(|r| r.2.clone())
                    .unwrap_or_else(|| "scenario".into()),
            ),
            created_at,
            started_at: None,
            completed_at: None,
            heartbeat_at: None,
            version: 1,
            paused_at: None,
            checkpoint_partition_key: None,
            estimated_completion_at: None,
            avg_partition_duration_ms: None,
            parent_job_id: None,
            upstream_job_count: if waits {
                spec.upstream.map(|u| u.0).unwrap_or(0)
            } else {
                0
            },
            completed_upstream_jobs: 0,
            sla_deadline_at: spec.deadline,
            priority: recreated.as_ref().map(|r| r.1).unwrap_or(spec.priority),
            recent_durations_ms: Vec::new(),
            forecast: None,
            judge_on_p90: false,
            impact: None,
            lineage_unread: None,
            upstream_note: None,
            wait_only: false,
        };
        let parallelism = spec.parallelism.max(1);
        self.jobs.push(SimJob {
            name,
            job,
            failures_used: vec![0; spec.failures.len()],
            spec,
            speedup,
            ready_at,
            pending: keys.into(),
            slots: vec![None; parallelism],
            completed_keys: Vec::new(),
            durations: Vec::new(),
            history: Vec::new(),
            successor: None,
        });
        id
    }

    fn cancel(
        &mut self,
        i: usize,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), ServoActionError> {
        let j = &mut self.jobs[i];
        if !j.job.state.is_active() {
            return Err(invalid(
                j.job.state,
                "Cannot cancel job in state '{}'. Only active jobs can be cancelled.",
            ));
        }
        j.job.state = JobState::Cancelled;
        j.job.error_message = Some(reason.to_string());
        j.job.completed_at = Some(now);
        j.job.version += 1;
        let skipped = j.pending.len() + j.slots.iter().flatten().count();
        j.job.skipped_partitions += skipped as i64;
        j.pending.clear();
        j.slots.iter_mut().for_each(|s| *s = None);
        let name = j.name.clone();
        self.log(now, &name, &format!("cancelled: {reason}"));
        Ok(())
    }

    fn advance(&mut self, to: DateTime<Utc>) {
        let mut changes = Vec::new();
        for j in &mut self.jobs {
            j.advance(to, &mut changes);
        }
        changes.sort_by_key(|c: &ServoChange| c.at);
        self.changes.extend(changes);
    }
}

impl SimJob {
    /// How long a partition that starts at `at` takes.
    fn duration_at(&self, at: DateTime<Utc>) -> Duration {
        let base = self
            .spec
            .pace
            .iter()
            .take_while(|(from, _)| *from <= at)
            .last()
            .or(self.spec.pace.first())
            .map(|(_, d)| *d)
            .unwrap_or(Duration::minutes(1));
        let ms = (base.num_milliseconds() as f64 / self.speedup).max(1000.0);
        Duration::milliseconds(ms as i64)
    }

    fn start_partitions(&mut self, at: DateTime<Utc>) {
        for s in 0..self.slots.len() {
            if self.slots[s].is_none() {
                let Some(key) = self.pending.pop_front() else {
                    break;
                };
                let end = at + self.duration_at(at);
                self.slots[s] = Some(InFlight {
                    key,
                    end,
                    started: at,
                });
            }
        }
    }

    /// Whether the partition finishing at `at` fails.
    fn fails(&mut self, at: DateTime<Utc>) -> bool {
        for (w, (from, count)) in self.spec.failures.iter().enumerate() {
            if *from <= at && self.failures_used[w] < *count {
                self.failures_used[w] += 1;
                return true;
            }
        }
        false
    }

    fn advance(&mut self, to: DateTime<Utc>, log: &mut Vec<ServoChange>) {
        let name = self.name.clone();
        let mut note = |at, what: String| {
            log.push(ServoChange {
                at,
                job: name.clone(),
                what,
            })
        };
        loop {
            match self.job.state {
                JobState::Pending | JobState::WaitingUpstream | JobState::Resuming => {
                    if to < self.ready_at {
                        break;
                    }
                    let at = self.ready_at;
                    if self.job.state != JobState::Resuming {
                        self.job.started_at = Some(at);
                        self.job.completed_upstream_jobs = self.job.upstream_job_count;
                        note(at, "started running".into());
                    } else {
                        note(at, "running again".into());
                    }
                    self.job.state = JobState::Running;
                    self.job.heartbeat_at = Some(at);
                    self.job.version += 1;
                    self.start_partitions(at);
                }
                JobState::Running | JobState::Paused => {
                    let next = self
                        .slots
                        .iter()
                        .enumerate()
                        .filter_map(|(i, s)| s.as_ref().map(|f| (i, f.end)))
                        .min_by_key(|(_, end)| *end);
                    let Some((slot, end)) = next.filter(|(_, end)| *end <= to) else {
                        break;
                    };
                    let done = self.slots[slot].take().expect("slot in flight");
                    let ms = (done.end - done.started).num_milliseconds();
                    let failed = self.fails(end);
                    self.history.push(PartitionObs {
                        key: done.key.clone(),
                        state: if failed {
                            PartitionState::Failed
                        } else {
                            PartitionState::Completed
                        },
                        started_at: Some(done.started),
                        completed_at: Some(end),
                        duration_ms: Some(ms),
                        attempt_count: 1,
                    });
                    if failed {
                        self.job.failed_partitions += 1;
                        note(end, format!("partition {} failed", done.key));
                    } else {
                        self.job.completed_partitions += 1;
                        self.completed_keys.push(done.key);
                        self.durations.push(ms);
                    }
                    let avg = match self.job.avg_partition_duration_ms {
                        None => ms as f64,
                        Some(prev) => EWMA_ALPHA * ms as f64 + (1.0 - EWMA_ALPHA) * prev as f64,
                    };
                    self.job.avg_partition_duration_ms = Some(avg.round() as i64);
                    let remaining = self.job.total_partitions
                        - self.job.completed_partitions
                        - self.job.failed_partitions
                        - self.job.skipped_partitions;
                    self.job.estimated_completion_at =
                        Some(end + Duration::milliseconds((remaining as f64 * avg) as i64));
                    self.job.heartbeat_at = Some(end);
                    if self.job.state == JobState::Running {
                        self.start_partitions(end);
                    }
                    if self.pending.is_empty() && self.slots.iter().all(Option::is_none) {
                        self.job.state = if self.job.failed_partitions > 0 {
                            self.job.error_message = Some(format!(
                                "{} failed",
                                crate::domain::text::count(
                                    self.job.failed_partitions,
                                    "partition",
                                    "partitions"
                                )
                            ));
                            JobState::Failed
                        } else {
                            JobState::Completed
                        };
                        self.job.completed_at = Some(end);
                        self.job.version += 1;
                        note(end, self.job.state.as_str().to_string());
                        break;
                    }
                }
                _ => break,
            }
        }
        if self.job.state == JobState::Running {
            // The executor heartbeats while it works.
            self.job.heartbeat_at = Some(to.max(self.job.heartbeat_at.unwrap_or(to)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::clock::ManualClock;

    fn t(min: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-03-02T09:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
            + Duration::minutes(min)
    }

    fn spec(partitions: usize, minutes: i64) -> SimJobSpec {
        SimJobSpec {
            name: "orders".into(),
            tenant: "acme".into(),
            asset: "revenue_orders".into(),
            owner: None,
            partitions,
            parallelism: 1,
            created: t(0),
            pace: vec![(t(0), Duration::minutes(minutes))],
            failures: vec![],
            upstream: None,
            deadline: Some(t(600)),
            priority: 5,
            first_partition: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
        }
    }

    fn servo(specs: Vec<SimJobSpec>) -> (SimServo, ManualClock) {
        let clock = ManualClock::new(t(0));
        (
            SimServo::new(Arc::new(clock.clone()), specs, vec![], 2.0),
            clock,
        )
    }

    #[test]
    fn partitions_complete_in_time_and_servo_eta_is_its_ewma() {
        let (s, clock) = servo(vec![spec(10, 6)]);
        // Picked up at +30s; 6-minute partitions: 4 done at 24.5 min.
        clock.set(t(25));
        let job = s.active_jobs("acme", true).unwrap().remove(0);
        assert_eq!(job.state, JobState::Running);
        assert_eq!(job.completed_partitions, 4);
        assert_eq!(job.avg_partition_duration_ms, Some(360_000));
        let last = t(0) + PICK_UP + Duration::minutes(24);
        assert_eq!(
            job.estimated_completion_at,
            Some(last + Duration::minutes(36))
        );
        clock.set(t(120));
        assert!(s.active_jobs("acme", true).unwrap().is_empty());
        assert!(s.changes().iter().any(|c| c.what == "completed"));
    }

    #[test]
    fn a_pause_lets_the_partition_in_flight_finish_and_resume_goes_through_resuming() {
        let (s, clock) = servo(vec![spec(10, 10)]);
        let id = sim_job_id(1);
        clock.set(t(5));
        let paused = s.pause("acme", id).unwrap();
        assert_eq!(paused.state, JobState::Paused);
        assert!(matches!(
            s.pause("acme", id),
            Err(ServoActionError::InvalidState { .. })
        ));
        clock.set(t(60));
        let job = s.get_job("acme", id).unwrap().unwrap();
        assert_eq!(
            job.completed_partitions, 1,
            "only the one in flight finished"
        );
        assert_eq!(s.resume("acme", id).unwrap().state, JobState::Resuming);
        clock.set(t(72));
        let job = s.get_job("acme", id).unwrap().unwrap();
        assert_eq!(job.state, JobState::Running);
        assert_eq!(job.completed_partitions, 2);
    }

    #[test]
    fn recreate_cancels_and_starts_the_rest_faster_at_priority_ten() {
        let (s, clock) = servo(vec![spec(10, 10)]);
        let id = sim_job_id(1);
        clock.set(t(31));
        let (old, new) = s.recreate("acme", id, 10, "U1").unwrap();
        assert_eq!(old.state, JobState::Cancelled);
        assert_eq!(old.error_message.as_deref(), Some(RECREATE_REASON));
        assert_eq!(new.priority, 10);
        assert_eq!(new.total_partitions, 7);
        assert_eq!(s.current_id("orders"), Some(new.id));
        clock.set(t(31) + PICK_UP + Duration::minutes(5));
        let job = s.get_job("acme", new.id).unwrap().unwrap();
        assert_eq!(
            job.completed_partitions, 1,
            "5-minute partitions at double speed"
        );
        assert!(s.get_job("globex", new.id).unwrap().is_none());
    }

    #[test]
    fn failures_and_outages() {
        let mut sp = spec(5, 10);
        sp.failures = vec![(t(0), 2)];
        let clock = ManualClock::new(t(0));
        let s = SimServo::new(
            Arc::new(clock.clone()),
            vec![sp],
            vec![(t(100), t(110))],
            2.0,
        );
        clock.set(t(100));
        assert!(matches!(
            s.active_jobs("acme", false),
            Err(ServoError::Unreachable(_))
        ));
        s.advance_to(t(110));
        let job = s.job(sim_job_id(1)).unwrap();
        assert_eq!(job.state, JobState::Failed);
        assert_eq!((job.failed_partitions, job.completed_partitions), (2, 3));
    }
}
